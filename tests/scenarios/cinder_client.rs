//! The Cinder client against the real Cinder + Keystone rig (tests/rig/cinder, keystone mode):
//! authentication (password, application credential, wrong credentials, re-authentication
//! after a revoked token), full and incremental backups, the delete order Cinder enforces,
//! restores that hold the source's bytes, waits that time out, and a backup of a deleted
//! volume. Fails, naming the rig, when PODBANK_TEST_CINDER_DIR is not set (ignored under
//! PODBANK_TEST_WITHOUT_RIGS=cinder).

use std::time::{Duration, Instant};

use crate::require_rig;
use crate::support::cinder::{
    meta, password_token, unique, with_cleanup, Fault, FlakyProxy, KeystoneAdmin,
};
use podbank::cinder::{
    BackupId, BackupStatus, Cinder, CinderError, CinderSettings, Microversion, NewBackup,
    NewVolume, ResourceKind, VolumeId,
};

const WAIT: Duration = Duration::from_secs(180);

async fn new_volume(cinder: &Cinder, name: &str) -> VolumeId {
    let volume = cinder
        .create_volume(&NewVolume {
            size_gib: 1,
            name: Some(name.to_string()),
            description: Some("podbank cinder_client test".into()),
            metadata: meta(&[("podbank-test", "1")]),
            ..NewVolume::default()
        })
        .await
        .expect("create volume");
    assert_eq!(volume.size_gib, 1);
    assert_eq!(volume.name, name);
    volume.id
}

#[tokio::test]
#[cfg_attr(
    podbank_without_cinder,
    ignore = "needs the Cinder rig; this run is without it (PODBANK_TEST_WITHOUT_RIGS)"
)]
async fn connect_finds_cinder_in_the_catalog_with_microversion_3_60() {
    let rig = require_rig!();
    let cinder = rig.connect().await;
    assert_eq!(
        cinder.microversion(),
        Microversion(3, 60),
        "the rig's Cinder offers 3.70"
    );
    assert!(
        cinder.endpoint().starts_with("http://127.0.0.1:8776/v3/"),
        "{}",
        cinder.endpoint()
    );

    // the internal interface is in the rig's catalog too
    let internal = CinderSettings {
        interface: Some("internal".into()),
        ..rig.settings()
    };
    assert!(Cinder::connect(&internal).await.is_ok());

    // a region the catalog does not have: a catalog error that names it
    let nowhere = CinderSettings {
        region: Some("RegionNowhere".into()),
        ..rig.settings()
    };
    match Cinder::connect(&nowhere).await {
        Err(CinderError::Catalog(msg)) => {
            assert!(
                msg.contains("RegionNowhere") && msg.contains("volumev3"),
                "{msg}"
            )
        }
        other => panic!("expected a catalog error, got {other:?}"),
    }

    // a cloud the file does not have
    let missing = CinderSettings {
        cloud: Some("nope".into()),
        ..rig.settings()
    };
    match Cinder::connect(&missing).await {
        Err(CinderError::Config(msg)) => {
            assert!(msg.contains("nope") && msg.contains("rig"), "{msg}")
        }
        other => panic!("expected a config error, got {other:?}"),
    }
}

#[tokio::test]
#[cfg_attr(
    podbank_without_cinder,
    ignore = "needs the Cinder rig; this run is without it (PODBANK_TEST_WITHOUT_RIGS)"
)]
async fn wrong_password_is_a_clear_auth_error() {
    let rig = require_rig!();
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = "not-the-password-4711";
    let settings = rig.settings_with_auth(
        dir.path(),
        None,
        &[
            ("auth_url", crate::support::cinder::KEYSTONE),
            ("username", "admin"),
            ("password", secret),
            ("project_name", "admin"),
            ("user_domain_name", "Default"),
            ("project_domain_name", "Default"),
        ],
    );
    let started = Instant::now();
    match Cinder::connect(&settings).await {
        Err(CinderError::Auth(msg)) => {
            assert!(msg.contains("user admin"), "names the user: {msg}");
            assert!(msg.contains("127.0.0.1:5000"), "names Keystone: {msg}");
            assert!(
                msg.contains("clouds.yaml"),
                "names the settings' source: {msg}"
            );
            assert!(!msg.contains(secret), "never prints the password: {msg}");
        }
        other => panic!("expected an auth error, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "no retries on 401"
    );

    // a project the user is not a member of: also refused by Keystone
    let settings = rig.settings_with_auth(
        dir.path(),
        Some("password"),
        &[
            ("auth_url", crate::support::cinder::KEYSTONE),
            ("username", "admin"),
            ("password", "adminpass"),
            ("project_name", "no-such-project"),
        ],
    );
    assert!(matches!(
        Cinder::connect(&settings).await,
        Err(CinderError::Auth(_))
    ));
}

#[tokio::test]
#[cfg_attr(
    podbank_without_cinder,
    ignore = "needs the Cinder rig; this run is without it (PODBANK_TEST_WITHOUT_RIGS)"
)]
async fn application_credential_auth() {
    let rig = require_rig!();
    let admin = KeystoneAdmin::login().await;
    let name = unique("appcred");
    let (id, secret) = match admin.create_app_credential(&name).await {
        Ok(cred) => cred,
        Err(e) => panic!(
            "Keystone's default policy lets a user create its own application credentials: {e}"
        ),
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = rig.settings_with_auth(
        dir.path(),
        Some("v3applicationcredential"),
        &[
            ("auth_url", crate::support::cinder::KEYSTONE),
            ("application_credential_id", &id),
            ("application_credential_secret", &secret),
        ],
    );
    let cinder = match Cinder::connect(&settings).await {
        Ok(c) => c,
        Err(e) => {
            admin.delete_app_credential(&id).await;
            panic!("connect with an application credential: {e}");
        }
    };
    assert!(
        cinder.endpoint().ends_with(&admin.project_id),
        "scoped to the credential's project"
    );
    let listed = cinder.list_backups(Some(&name)).await;
    let wrong = rig.settings_with_auth(
        dir.path(),
        Some("v3applicationcredential"),
        &[
            ("auth_url", crate::support::cinder::KEYSTONE),
            ("application_credential_id", &id),
            ("application_credential_secret", "wrong-secret"),
        ],
    );
    let wrong_outcome = Cinder::connect(&wrong).await;
    // deleting the credential revokes its tokens: the client's next call re-authenticates,
    // and Keystone no longer knows the credential
    admin.delete_app_credential(&id).await;
    let after_delete = cinder.list_backups(Some(&name)).await;

    assert!(listed.expect("list as the credential").is_empty());
    match wrong_outcome {
        Err(CinderError::Auth(msg)) => {
            assert!(
                msg.contains(&format!("application credential {id}")),
                "{msg}"
            );
            assert!(!msg.contains("wrong-secret"), "{msg}");
        }
        other => panic!("expected an auth error, got {other:?}"),
    }
    match after_delete {
        Err(CinderError::Auth(msg)) => assert!(msg.contains(&id), "{msg}"),
        other => panic!("expected an auth error after the credential was deleted, got {other:?}"),
    }
}

#[tokio::test]
#[cfg_attr(
    podbank_without_cinder,
    ignore = "needs the Cinder rig; this run is without it (PODBANK_TEST_WITHOUT_RIGS)"
)]
async fn a_revoked_token_is_replaced_after_401() {
    let rig = require_rig!();
    let admin = KeystoneAdmin::login().await;
    let user = unique("reauth");
    let password = "reauth-pass-1";
    let user_id = admin.create_user(&user, password).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = rig.settings_with_auth(
        dir.path(),
        None,
        &[
            ("auth_url", crate::support::cinder::KEYSTONE),
            ("username", &user),
            ("password", password),
            ("project_name", "admin"),
        ],
    );
    let result = async {
        let cinder = Cinder::connect(&settings)
            .await
            .expect("connect as the new user");
        // a token of the same user, taken before the revocation, to prove it is refused after
        let http = reqwest::Client::new();
        let (old_token, _) = password_token(&http, &user, password, "admin")
            .await
            .expect("token");
        // disabling the user revokes every token it has; enabling it lets it log in again
        admin.set_enabled(&user_id, false).await;
        admin.set_enabled(&user_id, true).await;
        let refused = http
            .get(format!("{}/backups?limit=1", cinder.endpoint()))
            .header("X-Auth-Token", old_token)
            .header("OpenStack-API-Version", "volume 3.60")
            .send()
            .await
            .expect("GET with the revoked token");
        assert_eq!(
            refused.status().as_u16(),
            401,
            "the revoked token is refused by Cinder"
        );
        // the client's cached token was revoked too: it must authenticate again, transparently
        cinder
            .list_backups(Some(&user))
            .await
            .expect("listing after the revocation re-authenticates")
    }
    .await;
    admin.delete_user(&user_id).await;
    assert!(result.is_empty());
}

#[tokio::test]
#[cfg_attr(
    podbank_without_cinder,
    ignore = "needs the Cinder rig; this run is without it (PODBANK_TEST_WITHOUT_RIGS)"
)]
async fn full_and_incremental_backups_restore_and_delete_in_order() {
    let rig = require_rig!();
    let cinder = rig.connect().await;
    let prefix = unique("chain");
    with_cleanup(&cinder.clone(), |created| async move {
        let vol = new_volume(&cinder, &format!("{prefix}-src")).await;
        created.volume(&vol);
        let vol_info = cinder
            .wait_volume(&vol, WAIT)
            .await
            .expect("volume available");
        assert_eq!(vol_info.status, "available");
        assert_eq!(
            vol_info.metadata.get("podbank-test").map(String::as_str),
            Some("1")
        );
        let sum_full = rig.write_pattern(&vol, 1);

        let t = Instant::now();
        let full = cinder
            .create_backup(&NewBackup {
                volume_id: vol.clone(),
                name: Some(format!("{prefix}-full")),
                description: Some("full".into()),
                incremental: false,
                force: true,
                snapshot_id: None,
                metadata: meta(&[("checkpoint", "c1")]),
            })
            .await
            .expect("create full backup");
        created.backup(&full.id);
        assert_eq!(full.volume_id, vol);
        let full = cinder
            .wait_backup(&full.id, WAIT)
            .await
            .expect("full backup available");
        eprintln!("full backup available in {:?}", t.elapsed());
        assert_eq!(full.status, BackupStatus::Available);
        assert!(!full.is_incremental);
        assert_eq!(full.size_gib, 1);
        assert_eq!(
            full.metadata.get("checkpoint").map(String::as_str),
            Some("c1")
        );

        // change the volume, then an incremental backup on top of the full one
        let sum_incr = rig.write_pattern(&vol, 2);
        assert_ne!(sum_full, sum_incr);
        let t = Instant::now();
        let incr = cinder
            .create_backup(&NewBackup {
                volume_id: vol.clone(),
                name: Some(format!("{prefix}-incr")),
                incremental: true,
                force: true,
                ..NewBackup::default()
            })
            .await
            .expect("create incremental backup");
        created.backup(&incr.id);
        let incr = cinder
            .wait_backup(&incr.id, WAIT)
            .await
            .expect("incremental available");
        eprintln!("incremental backup available in {:?}", t.elapsed());
        assert!(incr.is_incremental, "second backup is incremental");
        let full_now = cinder
            .get_backup(&full.id)
            .await
            .expect("get")
            .expect("exists");
        assert!(
            full_now.has_dependent_backups,
            "the full backup now has a dependent"
        );

        // listing by name prefix finds both, and nothing else
        let listed = cinder.list_backups(Some(&prefix)).await.expect("list");
        let mut ids: Vec<&BackupId> = listed.iter().map(|b| &b.id).collect();
        ids.sort();
        let mut want = vec![&full.id, &incr.id];
        want.sort();
        assert_eq!(ids, want);
        assert!(cinder.list_backups(None).await.expect("list all").len() >= 2);
        // the same listing one backup per page: the marker walk finds both
        let paged = Cinder::connect(&CinderSettings {
            page_size: 1,
            ..rig.settings()
        })
        .await
        .expect("connect");
        let mut paged_ids: Vec<BackupId> = paged
            .list_backups(Some(&prefix))
            .await
            .expect("paged list")
            .into_iter()
            .map(|b| b.id)
            .collect();
        paged_ids.sort();
        assert_eq!(paged_ids.iter().collect::<Vec<_>>(), want);

        // the parent cannot go first
        match cinder.delete_backup(&full.id).await {
            Err(CinderError::HasDependents { id, message }) => {
                assert_eq!(id, full.id);
                assert!(message.contains("Incremental backups exist"), "{message}");
            }
            other => panic!("expected HasDependents, got {other:?}"),
        }

        // restore the incremental backup to a new volume (POST /backups/{id}/restore), and,
        // at the same time, create a volume from the full backup (volume create with
        // backup_id, honoured at microversion >= 3.47): each holds its backup's bytes
        let t = Instant::now();
        let restore = async {
            let restored = cinder
                .restore_backup(&incr.id, None, Some(&format!("{prefix}-restored")))
                .await
                .expect("restore");
            created.volume(&restored);
            let info = cinder
                .wait_volume(&restored, WAIT)
                .await
                .expect("restored volume");
            eprintln!("restore available in {:?}", t.elapsed());
            (restored, info)
        };
        let from_backup = async {
            let volume = cinder
                .create_volume(&NewVolume {
                    size_gib: 1,
                    name: Some(format!("{prefix}-from-full")),
                    backup_id: Some(full.id.clone()),
                    ..NewVolume::default()
                })
                .await
                .expect("create volume from backup");
            created.volume(&volume.id);
            cinder
                .wait_volume(&volume.id, WAIT)
                .await
                .expect("volume from backup available");
            eprintln!("volume from backup available in {:?}", t.elapsed());
            volume.id
        };
        let ((restored, restored_info), from_full) = tokio::join!(restore, from_backup);
        assert_eq!(restored_info.name, format!("{prefix}-restored"));
        cinder
            .wait_backup(&incr.id, WAIT)
            .await
            .expect("backup available again");
        cinder
            .wait_backup(&full.id, WAIT)
            .await
            .expect("full backup available again");
        assert_eq!(
            rig.checksum(&restored),
            sum_incr,
            "restored volume holds the incremental backup"
        );
        assert_eq!(
            rig.checksum(&from_full),
            sum_full,
            "volume from backup_id holds the full backup"
        );

        // child first, then the parent: both go
        cinder
            .delete_backup(&incr.id)
            .await
            .expect("delete incremental");
        cinder
            .wait_backup_deleted(&incr.id, WAIT)
            .await
            .expect("incremental gone");
        cinder
            .delete_backup(&full.id)
            .await
            .expect("delete full once alone");
        cinder
            .wait_backup_deleted(&full.id, WAIT)
            .await
            .expect("full gone");
        assert!(cinder.get_backup(&full.id).await.expect("get").is_none());
        assert!(cinder
            .list_backups(Some(&prefix))
            .await
            .expect("list")
            .is_empty());
        // deleting again is fine
        cinder
            .delete_backup(&full.id)
            .await
            .expect("delete of a gone backup is Ok");
    })
    .await;
}

#[tokio::test]
#[cfg_attr(
    podbank_without_cinder,
    ignore = "needs the Cinder rig; this run is without it (PODBANK_TEST_WITHOUT_RIGS)"
)]
async fn wait_backup_deadline_gives_timeout() {
    let rig = require_rig!();
    let cinder = rig.connect().await;
    let prefix = unique("timeout");
    with_cleanup(&cinder.clone(), |created| async move {
        let vol = new_volume(&cinder, &format!("{prefix}-src")).await;
        created.volume(&vol);
        cinder
            .wait_volume(&vol, WAIT)
            .await
            .expect("volume available");
        let backup = cinder
            .create_backup(&NewBackup {
                volume_id: vol.clone(),
                name: Some(format!("{prefix}-bk")),
                ..NewBackup::default()
            })
            .await
            .expect("create backup");
        created.backup(&backup.id);
        let t = Instant::now();
        match cinder
            .wait_backup(&backup.id, Duration::from_millis(300))
            .await
        {
            Err(CinderError::Timeout {
                what,
                waited,
                last_status,
            }) => {
                assert!(what.contains(backup.id.as_str()), "{what}");
                assert_eq!(last_status, "creating");
                assert!(waited >= Duration::from_millis(300), "{waited:?}");
            }
            other => panic!("expected a timeout, got {other:?}"),
        }
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "the deadline is kept: {:?}",
            t.elapsed()
        );
        // the same wait with time enough succeeds
        let done = cinder
            .wait_backup(&backup.id, WAIT)
            .await
            .expect("available");
        assert_eq!(done.status, BackupStatus::Available);
    })
    .await;
}

#[tokio::test]
#[cfg_attr(
    podbank_without_cinder,
    ignore = "needs the Cinder rig; this run is without it (PODBANK_TEST_WITHOUT_RIGS)"
)]
async fn backup_of_a_deleted_volume_is_not_found() {
    let rig = require_rig!();
    let cinder = rig.connect().await;
    let prefix = unique("gone");
    let vol = new_volume(&cinder, &format!("{prefix}-src")).await;
    cinder
        .wait_volume(&vol, WAIT)
        .await
        .expect("volume available");
    cinder.delete_volume(&vol).await.expect("delete volume");
    cinder
        .wait_volume_deleted(&vol, WAIT)
        .await
        .expect("volume gone");
    assert!(cinder.get_volume(&vol).await.expect("get").is_none());
    cinder
        .delete_volume(&vol)
        .await
        .expect("deleting a gone volume is Ok");

    let err = cinder
        .create_backup(&NewBackup {
            volume_id: vol.clone(),
            name: Some(format!("{prefix}-bk")),
            force: true,
            ..NewBackup::default()
        })
        .await
        .expect_err("no backup of a deleted volume");
    match &err {
        CinderError::NotFound { kind, id } => {
            assert_eq!(*kind, ResourceKind::Volume);
            assert_eq!(id, vol.as_str());
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        format!("volume {vol} does not exist in Cinder")
    );
    assert!(
        cinder
            .list_backups(Some(&prefix))
            .await
            .expect("list")
            .is_empty(),
        "no backup left behind"
    );

    // unknown backups: None, Ok on delete, NotFound on wait and restore
    let ghost = BackupId::new("00000000-0000-4000-8000-000000000000");
    assert!(cinder.get_backup(&ghost).await.expect("get").is_none());
    cinder
        .delete_backup(&ghost)
        .await
        .expect("delete of an unknown backup is Ok");
    assert!(matches!(
        cinder.wait_backup(&ghost, WAIT).await,
        Err(CinderError::NotFound {
            kind: ResourceKind::Backup,
            ..
        })
    ));
    assert!(matches!(
        cinder.restore_backup(&ghost, None, None).await,
        Err(CinderError::NotFound {
            kind: ResourceKind::Backup,
            ..
        })
    ));
    // a bad request gives Cinder's own message
    match cinder
        .create_volume(&NewVolume {
            size_gib: 1,
            volume_type: Some("no-such-type".into()),
            ..NewVolume::default()
        })
        .await
    {
        Err(CinderError::Api {
            status, message, ..
        }) => {
            assert!(status == 400 || status == 404, "{status}");
            assert!(message.contains("no-such-type"), "{message}");
        }
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
#[cfg_attr(
    podbank_without_cinder,
    ignore = "needs the Cinder rig; this run is without it (PODBANK_TEST_WITHOUT_RIGS)"
)]
async fn retries_5xx_and_connection_errors_but_never_repeats_a_post_cinder_may_have_run() {
    let rig = require_rig!();
    let direct = rig.connect().await;
    let proxy = FlakyProxy::start("http://127.0.0.1:8776").await;
    let settings = CinderSettings {
        endpoint_override: Some(
            direct
                .endpoint()
                .replacen("127.0.0.1:8776", &proxy.authority, 1),
        ),
        max_retries: 3,
        request_timeout: Duration::from_secs(2),
        ..rig.settings()
    };
    let cinder = Cinder::connect(&settings)
        .await
        .expect("connect through the proxy");
    assert_eq!(
        cinder.microversion(),
        Microversion(3, 60),
        "discovery through the override"
    );
    let ghost = BackupId::new("00000000-0000-4000-8000-000000000001");
    let faults_of = |from: usize| -> Vec<Option<Fault>> {
        proxy.seen()[from..].iter().map(|s| s.fault).collect()
    };

    // GET: 503, 502, 500 are retried, then Cinder's own 404 is the answer
    let n = proxy.seen().len();
    proxy.fail_next(&[Fault::Status(503), Fault::Status(502), Fault::Status(500)]);
    assert!(cinder
        .get_backup(&ghost)
        .await
        .expect("retried to success")
        .is_none());
    assert_eq!(
        faults_of(n),
        [
            Some(Fault::Status(503)),
            Some(Fault::Status(502)),
            Some(Fault::Status(500)),
            None
        ]
    );

    // GET: more failures than retries: the last one is reported with its message
    let n = proxy.seen().len();
    proxy.fail_next(&[Fault::Status(503); 4]);
    match cinder.get_backup(&ghost).await {
        Err(CinderError::Api {
            status: 503,
            message,
            ..
        }) => {
            assert!(message.contains("injected 503"), "{message}")
        }
        other => panic!("expected the final 503, got {other:?}"),
    }
    assert_eq!(proxy.seen().len() - n, 4, "1 try + 3 retries");

    // GET: a hung server is cut by the request timeout and retried
    let n = proxy.seen().len();
    proxy.fail_next(&[Fault::Hang]);
    let t = Instant::now();
    assert!(cinder
        .get_backup(&ghost)
        .await
        .expect("retried after the timeout")
        .is_none());
    assert!(t.elapsed() >= Duration::from_secs(2), "{:?}", t.elapsed());
    assert_eq!(faults_of(n), [Some(Fault::Hang), None]);

    // 401 once: a new token, then the answer
    let n = proxy.seen().len();
    proxy.fail_next(&[Fault::Status(401)]);
    assert!(cinder
        .get_backup(&ghost)
        .await
        .expect("re-authenticated")
        .is_none());
    assert_eq!(faults_of(n), [Some(Fault::Status(401)), None]);

    let prefix = unique("retry");
    let (proxy, cinder, faults_of) = (&proxy, &cinder, &faults_of);
    with_cleanup(&direct.clone(), |created| async move {
        let request = NewVolume {
            size_gib: 1,
            name: Some(format!("{prefix}-vol")),
            ..NewVolume::default()
        };
        // POST: a 500 may mean Cinder did the work: not retried
        let n = proxy.seen().len();
        proxy.fail_next(&[Fault::Status(500)]);
        match cinder.create_volume(&request).await {
            Err(CinderError::Api {
                status: 500,
                method: "POST",
                path,
                ..
            }) => {
                assert!(path.ends_with("/volumes"), "{path}")
            }
            other => panic!("expected the 500, got {other:?}"),
        }
        assert_eq!(faults_of(n), [Some(Fault::Status(500))], "one POST only");

        // POST: a timeout may mean Cinder did the work: not retried either
        let n = proxy.seen().len();
        proxy.fail_next(&[Fault::Hang]);
        match cinder.create_volume(&request).await {
            Err(CinderError::Transport { message, .. }) => {
                assert!(message.contains("timed out"), "{message}")
            }
            other => panic!("expected a timeout, got {other:?}"),
        }
        assert_eq!(faults_of(n), [Some(Fault::Hang)], "one POST only");

        // POST: 503 (no backend took it) is retried, once forwarded: one volume
        let n = proxy.seen().len();
        proxy.fail_next(&[Fault::Status(503)]);
        let volume = cinder
            .create_volume(&request)
            .await
            .expect("retried after 503");
        created.volume(&volume.id);
        assert_eq!(faults_of(n), [Some(Fault::Status(503)), None]);
        cinder
            .wait_volume(&volume.id, WAIT)
            .await
            .expect("available");
    })
    .await;

    // nothing listening: connection refused, retried with backoff, then a transport error
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let unreachable = CinderSettings {
        endpoint_override: Some(format!("http://127.0.0.1:{closed}/v3/x")),
        max_retries: 2,
        ..rig.settings()
    };
    let t = Instant::now();
    match Cinder::connect(&unreachable).await {
        Err(CinderError::Transport { url, message }) => {
            assert!(url.contains(&closed.to_string()), "{url}");
            assert!(
                message.contains("cannot connect") && message.contains("after 2 retries"),
                "{message}"
            );
        }
        other => panic!("expected a transport error, got {other:?}"),
    }
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(10),
        "{took:?}"
    );
}

#[tokio::test]
#[cfg_attr(
    podbank_without_cinder,
    ignore = "needs the Cinder rig; this run is without it (PODBANK_TEST_WITHOUT_RIGS)"
)]
async fn a_backup_cinder_cannot_read_ends_in_backup_failed_with_the_reason() {
    let rig = require_rig!();
    let cinder = rig.connect().await;
    let prefix = unique("fail");
    with_cleanup(&cinder.clone(), |created| async move {
        let vol = new_volume(&cinder, &format!("{prefix}-src")).await;
        created.volume(&vol);
        cinder
            .wait_volume(&vol, WAIT)
            .await
            .expect("volume available");
        // take the volume's file away from under cinder-backup
        let file = rig.volume_file(&vol);
        let aside = file.with_extension("aside");
        std::fs::rename(&file, &aside).expect("move the volume file aside");
        let backup = cinder
            .create_backup(&NewBackup {
                volume_id: vol.clone(),
                name: Some(format!("{prefix}-bk")),
                force: true,
                ..NewBackup::default()
            })
            .await
            .expect("Cinder accepts the backup");
        created.backup(&backup.id);
        let outcome = cinder.wait_backup(&backup.id, WAIT).await;
        std::fs::rename(&aside, &file).expect("put the volume file back");
        match outcome {
            Err(CinderError::BackupFailed { id, fail_reason }) => {
                assert_eq!(id, backup.id);
                assert!(!fail_reason.is_empty());
                eprintln!("fail_reason: {fail_reason}");
            }
            other => panic!("expected BackupFailed, got {other:?}"),
        }
        let failed = cinder
            .get_backup(&backup.id)
            .await
            .expect("get")
            .expect("still listed");
        assert_eq!(failed.status, BackupStatus::Error);
        // a failed backup can be deleted (and is, by the cleanup)
    })
    .await;
}

/// Needs no rig: nothing listens on the port.
#[tokio::test]
async fn unreachable_keystone_is_a_transport_error_after_retries() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("clouds.yaml");
    std::fs::write(
        &path,
        format!(
            "clouds:\n  down:\n    auth:\n      auth_url: http://127.0.0.1:{closed}/v3\n      \
             username: u\n      password: p\n      project_name: x\n"
        ),
    )
    .expect("write clouds.yaml");
    let settings = CinderSettings {
        cloud: Some("down".into()),
        clouds_file: Some(path),
        max_retries: 1,
        ..CinderSettings::default()
    };
    let t = Instant::now();
    match Cinder::connect(&settings).await {
        Err(CinderError::Transport { url, message }) => {
            assert!(url.contains(&closed.to_string()), "{url}");
            assert!(message.starts_with("Keystone"), "{message}");
        }
        other => panic!("expected a transport error, got {other:?}"),
    }
    assert!(
        t.elapsed() >= Duration::from_millis(500),
        "one retry after a backoff"
    );
}
