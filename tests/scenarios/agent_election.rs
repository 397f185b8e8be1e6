//! Leader election on a real etcd: exactly one leader; a crashed leader is replaced within
//! the lease TTL; resigning hands over at once; a leader that loses etcd steps down; and
//! podbank writes nothing outside its own election key.

use std::time::{Duration, Instant};

use crate::support::engine::wait_for;
use crate::support::etcd::TestEtcd;
use podbank::etcd::{Election, ElectionConfig, ElectionError, Etcd};

const TTL: Duration = Duration::from_secs(3);
const KEY: &str = "/podbank/election/test";

fn config(identity: &str) -> ElectionConfig {
    ElectionConfig {
        key: KEY.into(),
        ttl: TTL,
        identity: identity.into(),
    }
}

/// Two participants, each with its own connection, as two replicas would have.
async fn two(etcd: &TestEtcd) -> (Election, Election) {
    let a = Election::start(&etcd.connect().await, config("node-a")).expect("start a");
    let b = Election::start(&etcd.connect().await, config("node-b")).expect("start b");
    (a, b)
}

/// Wait until exactly one of `es` leads, then check for `hold` that it stays exactly one.
async fn exactly_one(es: &[&Election], hold: Duration) -> usize {
    wait_for("a leader", Duration::from_secs(10), || {
        es.iter().filter(|e| e.is_leader()).count() == 1
    })
    .await;
    let leader = es.iter().position(|e| e.is_leader()).expect("leader");
    let until = Instant::now() + hold;
    while Instant::now() < until {
        let n = es.iter().filter(|e| e.is_leader()).count();
        assert_eq!(n, 1, "{n} leaders at once");
        assert!(es[leader].is_leader(), "leadership moved without a cause");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    leader
}

async fn all_keys(etcd: &Etcd) -> Vec<String> {
    let mut kv = etcd.client().kv_client();
    let resp = kv
        .get(
            vec![0u8],
            Some(
                etcd_client::GetOptions::new()
                    .with_from_key()
                    .with_keys_only(),
            ),
        )
        .await
        .expect("range");
    resp.kvs()
        .iter()
        .map(|k| String::from_utf8_lossy(k.key()).into_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_leader_and_a_crashed_leader_is_replaced_within_the_ttl() {
    let etcd = TestEtcd::start();
    let (a, b) = two(&etcd).await;
    // Longer than a TTL: keep-alives hold the lease; nobody else gets in.
    let leader = exactly_one(&[&a, &b], TTL + Duration::from_secs(1)).await;
    let (leader, follower) = if leader == 0 { (a, b) } else { (b, a) };
    let leader_name = leader.config().identity.clone();

    // Both see who leads, through `leader` (a request) and `observe` (a stream).
    assert_eq!(
        follower.current_leader().await.expect("leader"),
        Some(leader_name.clone())
    );
    let mut observed = follower.leader();
    tokio::time::timeout(
        Duration::from_secs(5),
        observed.wait_for(|l| l.as_deref() == Some(leader_name.as_str())),
    )
    .await
    .expect("observed in time")
    .expect("observer alive");

    // Crash: the leader's tasks stop, nothing is resigned or revoked.
    let crashed = Instant::now();
    drop(leader);
    let mut leading = follower.leading();
    tokio::time::timeout(TTL + Duration::from_secs(3), leading.wait_for(|l| *l))
        .await
        .expect("the follower takes over")
        .expect("election alive");
    let took = crashed.elapsed();
    eprintln!("failover after a crash took {took:?} (TTL {TTL:?})");
    // The lease can outlive its last keep-alive by at most the TTL, plus etcd's expiry
    // check period (500 ms).
    assert!(took <= TTL + Duration::from_millis(1500), "took {took:?}");
    assert_eq!(
        follower.current_leader().await.expect("leader"),
        Some(follower.config().identity.clone())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resigning_hands_over_at_once_and_writes_only_the_election_key() {
    let etcd = TestEtcd::start();
    let client = etcd.connect().await;
    let (a, b) = two(&etcd).await;
    let leader = exactly_one(&[&a, &b], Duration::from_millis(200)).await;
    let (leader, follower) = if leader == 0 { (a, b) } else { (b, a) };

    // The only keys in etcd are the two candidates', under the election key.
    let keys = all_keys(&client).await;
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(
        keys.iter().all(|k| k.starts_with(&format!("{KEY}/"))),
        "{keys:?}"
    );

    let started = Instant::now();
    leader.resign(Duration::from_secs(5)).await;
    let mut leading = follower.leading();
    tokio::time::timeout(Duration::from_secs(2), leading.wait_for(|l| *l))
        .await
        .expect("handover without waiting for the TTL")
        .expect("election alive");
    eprintln!("handover after resign took {:?}", started.elapsed());
    assert!(started.elapsed() < TTL);
    // The resigned candidate's key is gone (resign returns after deleting it).
    let keys = all_keys(&client).await;
    assert_eq!(keys.len(), 1, "{keys:?}");

    follower.resign(Duration::from_secs(5)).await;
    assert!(all_keys(&client).await.is_empty(), "nothing left behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_that_loses_etcd_steps_down_within_the_ttl() {
    let etcd = TestEtcd::start();
    let e = Election::start(&etcd.connect().await, config("lonely")).expect("start");
    let mut leading = e.leading();
    tokio::time::timeout(Duration::from_secs(10), leading.wait_for(|l| *l))
        .await
        .expect("leads")
        .expect("alive");
    let lost = Instant::now();
    drop(etcd); // kills the etcd process
    tokio::time::timeout(TTL + Duration::from_secs(1), leading.wait_for(|l| !*l))
        .await
        .expect("steps down before the lease could have expired")
        .expect("alive");
    eprintln!("stepped down {:?} after etcd died", lost.elapsed());
    assert!(lost.elapsed() <= TTL + Duration::from_millis(100));
}

#[tokio::test]
async fn keys_under_the_kubernetes_prefix_are_refused() {
    let etcd = TestEtcd::start();
    let client = etcd.connect().await;
    for key in ["/registry/podbank", "/registry", "relative"] {
        let err = Election::start(
            &client,
            ElectionConfig {
                key: key.into(),
                ..config("x")
            },
        )
        .expect_err(key);
        assert!(
            matches!(
                err,
                ElectionError::KeyUnderKubernetesPrefix { .. } | ElectionError::InvalidKey(_)
            ),
            "{key}: {err}"
        );
    }
    assert!(all_keys(&client).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_whose_campaign_times_out_keeps_campaigning() {
    let etcd = TestEtcd::start();
    let leader = Election::start(&etcd.connect().await, config("leader")).expect("leader");
    let mut leading = leader.leading();
    tokio::time::timeout(Duration::from_secs(10), leading.wait_for(|l| *l))
        .await
        .expect("leads")
        .expect("alive");
    // The follower's client gives up on every request after 1 s: its blocking campaign
    // call times out again and again while the leader lives.
    let short = Etcd::connect(&podbank::etcd::EtcdConfig {
        request_timeout: Duration::from_secs(1),
        ..etcd.config()
    })
    .await
    .expect("connect");
    let follower = Election::start(&short, config("follower")).expect("follower");
    let until = Instant::now() + Duration::from_secs(4);
    while Instant::now() < until {
        assert!(leader.is_leader() && !follower.is_leader());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let crashed = Instant::now();
    drop(leader);
    let mut leading = follower.leading();
    tokio::time::timeout(TTL + Duration::from_secs(3), leading.wait_for(|l| *l))
        .await
        .expect("the follower still takes over")
        .expect("alive");
    eprintln!("takeover after campaign timeouts: {:?}", crashed.elapsed());
    assert!(crashed.elapsed() <= TTL + Duration::from_millis(1500));
}
