//! The seeder writes what kube-apiserver writes: the same envelope and, at the object,
//! metadata and spec levels, at least the fields a real API server stored for the same kind
//! of object (shared/testdata/apiserver-v1.32).

use std::collections::BTreeSet;

use podbank::codec::{parse_plain, wire};
use podbank::seed::{self, SeedPlan};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/data/fixtures/apiserver-v1.32/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Field numbers present at the object level, in metadata (1) and in spec (2).
fn shape(value: &[u8]) -> [BTreeSet<u32>; 3] {
    let obj = parse_plain("shape", value.to_vec()).expect("decodes");
    let raw = obj.object_bytes();
    let top = wire::parse(raw).expect("object");
    let numbers =
        |fields: &[wire::Field<'_>]| fields.iter().map(|f| f.number).collect::<BTreeSet<_>>();
    let sub = |n: u32| {
        top.iter()
            .find(|f| f.number == n)
            .map(|f| numbers(&wire::parse(f.value).expect("submessage")))
            .unwrap_or_default()
    };
    [numbers(&top), sub(1), sub(2)]
}

#[test]
fn seeded_objects_have_the_shape_of_real_api_server_output() {
    let plan = SeedPlan::default();
    let objects = seed::pod_objects(&plan, 0); // web-0: a pod with a Cinder CSI claim
    let find = |prefix: &str| {
        objects
            .iter()
            .find(|o| o.key.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix}"))
            .value
            .clone()
    };
    let pairs = [
        ("pods_demo_web-with-pvc.pb", find("/registry/pods/")),
        (
            "persistentvolumeclaims_demo_data-pvc.pb",
            find("/registry/persistentvolumeclaims/"),
        ),
        (
            "persistentvolumes_pvc-3f1c2a9e-8b7d-4e21-9a6f-0c5d7e8b1a24.pb",
            find("/registry/persistentvolumes/"),
        ),
    ];
    for (name, seeded) in pairs {
        let real = fixture(name);
        // Same envelope bytes up to the raw object: magic, typeMeta.
        assert_eq!(&seeded[..4], b"k8s\0");
        let real_obj = parse_plain(name, real.clone()).expect("fixture");
        let seeded_obj = parse_plain(name, seeded.clone()).expect("seeded");
        assert_eq!(real_obj.api_version(), seeded_obj.api_version());
        assert_eq!(real_obj.kind(), seeded_obj.kind());
        let (r, s) = (shape(&real), shape(&seeded));
        for (level, (rl, sl)) in ["object", "metadata", "spec"]
            .iter()
            .zip(r.iter().zip(s.iter()))
        {
            let missing: Vec<&u32> = rl.difference(sl).collect();
            assert!(missing.is_empty(), "{name}: the seeder leaves out {level} fields {missing:?} that kube-apiserver wrote");
        }
    }
}
