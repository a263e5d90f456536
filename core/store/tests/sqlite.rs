//! SQLite-specific behaviour: durability settings, the directory lock, refusing files that are
//! not ours or are newer, read-only and full disks, backup and restore.

use std::fs;
use std::path::Path;
use std::process::Command;

use offst_store::schema::SCHEMA_VERSION;
use offst_store::{
    Batch, EventQuery, NewEvent, SqliteStore, Store, StoreError, DATABASE_FILE, LOCK_FILE,
};

fn event(i: u64) -> NewEvent {
    NewEvent {
        timestamp_ms: i,
        kind: "test".into(),
        friend: None,
        status: Some("succeeded".into()),
        payload: serde_json::json!({ "i": i }),
    }
}

fn add_events(store: &mut SqliteStore, count: u64) {
    let batch = Batch {
        events: (0..count).map(event).collect(),
        ..Batch::default()
    };
    store.commit(&batch).unwrap();
}

#[test]
fn durability_pragmas_are_in_force() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(store.pragma("journal_mode").unwrap(), "wal");
    assert_eq!(store.pragma("synchronous").unwrap(), "2", "2 = FULL");
    assert_eq!(store.pragma("foreign_keys").unwrap(), "1");
    assert_eq!(store.pragma("busy_timeout").unwrap(), "5000");
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    assert_eq!(
        store.pragma("application_id").unwrap(),
        0x4f46_5354.to_string()
    );
    store.integrity_check().unwrap();
}

#[test]
fn a_second_opener_of_the_same_directory_gets_a_clear_lock_error() {
    let dir = tempfile::tempdir().unwrap();
    let first = SqliteStore::open(dir.path()).unwrap();
    let err = SqliteStore::open(dir.path()).unwrap_err();
    assert!(matches!(err, StoreError::Locked(_)), "{err}");
    assert!(err.to_string().contains("in use by another Offst process"));
    drop(first);
    SqliteStore::open(dir.path()).expect("the lock is released on close");
}

#[test]
fn a_database_from_a_newer_version_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    drop(SqliteStore::open(dir.path()).unwrap());
    let path = dir.path().join(DATABASE_FILE);
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
    }
    let before = fs::read(&path).unwrap();
    let err = SqliteStore::open(dir.path()).unwrap_err();
    assert!(
        matches!(err, StoreError::NewerSchema { found, supported } if found == SCHEMA_VERSION + 1 && supported == SCHEMA_VERSION),
        "{err}"
    );
    assert!(err.to_string().contains("upgrade Offst"));
    assert_eq!(fs::read(&path).unwrap(), before, "nothing overwritten");
}

#[test]
fn a_foreign_sqlite_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DATABASE_FILE);
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE photos (id INTEGER PRIMARY KEY); INSERT INTO photos VALUES (1);",
        )
        .unwrap();
    }
    let err = SqliteStore::open(dir.path()).unwrap_err();
    assert!(matches!(err, StoreError::Foreign(_)), "{err}");
    let conn = rusqlite::Connection::open(&path).unwrap();
    let count: i64 = conn
        .query_row("SELECT count(*) FROM photos", [], |r| r.get(0))
        .unwrap();
    assert_eq!(count, 1, "the foreign database is untouched");
}

#[test]
fn a_file_that_is_not_a_database_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DATABASE_FILE);
    fs::write(
        &path,
        b"this is a text file that someone saved here by mistake\n",
    )
    .unwrap();
    let err = SqliteStore::open(dir.path()).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    assert_eq!(
        fs::read(&path).unwrap(),
        b"this is a text file that someone saved here by mistake\n"
    );
}

#[test]
fn a_damaged_database_is_reported_as_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut store = SqliteStore::open(dir.path()).unwrap();
        add_events(&mut store, 2_000);
    }
    let path = dir.path().join(DATABASE_FILE);
    let mut bytes = fs::read(&path).unwrap();
    // Keep the header, scribble over the b-tree pages.
    for byte in bytes.iter_mut().skip(4096).step_by(7) {
        *byte ^= 0x5a;
    }
    fs::write(&path, &bytes).unwrap();
    let _ = fs::remove_file(dir.path().join(format!("{DATABASE_FILE}-wal")));
    let result = SqliteStore::open(dir.path()).and_then(|store| {
        store.integrity_check()?;
        store.events(&EventQuery::default())
    });
    assert!(
        matches!(
            result,
            Err(StoreError::Corrupt { .. } | StoreError::Sqlite(_))
        ),
        "{result:?}"
    );
}

/// Mounts a small tmpfs at `dir` (root only), runs `test`, unmounts. Returns false when
/// mounting is not possible here.
fn with_tmpfs(dir: &Path, options: &str, test: impl FnOnce()) -> bool {
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", options, "tmpfs"])
        .arg(dir)
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        return false;
    }
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(test));
    let _ = Command::new("umount").arg(dir).status();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
    true
}

#[test]
fn a_read_only_directory_gives_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let mount = dir.path().join("ro");
    fs::create_dir(&mount).unwrap();
    let ran = with_tmpfs(&mount, "ro,size=1m", || {
        let err = SqliteStore::open(&mount.join("node")).unwrap_err();
        assert!(matches!(err, StoreError::ReadOnly(_)), "{err}");
        assert!(err.to_string().contains("read-only"));
    });
    if !ran {
        // Not root: ordinary permissions make the directory read-only.
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&mount, fs::Permissions::from_mode(0o555)).unwrap();
        let err = SqliteStore::open(&mount.join("node")).unwrap_err();
        assert!(matches!(err, StoreError::ReadOnly(_)), "{err}");
    }
}

#[test]
fn a_full_disk_fails_the_commit_and_keeps_what_was_committed() {
    let dir = tempfile::tempdir().unwrap();
    let mount = dir.path().join("small");
    fs::create_dir(&mount).unwrap();
    let check = |node_dir: &Path| {
        let mut store = SqliteStore::open(node_dir).unwrap();
        add_events(&mut store, 10);
        let huge = Batch {
            events: (0..200_000).map(event).collect(),
            ..Batch::default()
        };
        let err = store.commit(&huge).unwrap_err();
        assert!(matches!(err, StoreError::DiskFull), "{err}");
        assert!(err.to_string().contains("disk full"));
        assert_eq!(store.events(&EventQuery::default()).unwrap().len(), 10);
        drop(store);
        let store = SqliteStore::open(node_dir).unwrap();
        assert_eq!(store.events(&EventQuery::default()).unwrap().len(), 10);
    };
    let ran = with_tmpfs(&mount, "size=600k", || check(&mount.join("node")));
    assert!(
        ran || !nix_is_root(),
        "as root the full-disk test must run on a real (tmpfs) full disk"
    );
}

fn nix_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.starts_with(b"0"))
}

#[test]
fn backup_while_open_then_restore_into_a_new_directory() {
    let dir = tempfile::tempdir().unwrap();
    let node = dir.path().join("node");
    let backup = dir.path().join("backup.sqlite");
    let mut store = SqliteStore::open(&node).unwrap();
    add_events(&mut store, 100);
    store
        .commit(&Batch {
            settings: vec![("relays".into(), Some(b"r1".to_vec()))],
            ..Batch::default()
        })
        .unwrap();
    store.backup_to(&backup).unwrap();
    assert!(
        matches!(store.backup_to(&backup), Err(StoreError::Io { .. })),
        "never overwrites"
    );
    add_events(&mut store, 5); // after the backup: not in it

    let restored_dir = dir.path().join("restored");
    let restored = SqliteStore::restore(&backup, &restored_dir).unwrap();
    assert_eq!(restored.events(&EventQuery::default()).unwrap().len(), 100);
    assert_eq!(
        restored.setting("relays").unwrap().as_deref(),
        Some(&b"r1"[..])
    );
    restored.integrity_check().unwrap();
    drop(restored);
    assert!(
        SqliteStore::restore(&backup, &restored_dir).is_err(),
        "restoring over an existing database is refused"
    );
    assert!(restored_dir.join(LOCK_FILE).exists());
}

#[test]
fn restoring_a_file_that_is_not_a_backup_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("bogus");
    fs::write(&bogus, b"not a database at all, just some bytes...").unwrap();
    let target = dir.path().join("node");
    let err = SqliteStore::restore(&bogus, &target).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    assert!(!target.join(DATABASE_FILE).exists());
}

#[test]
fn history_exports_as_json_lines_and_csv() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    add_events(&mut store, 3);
    let mut json = Vec::new();
    offst_store::export::json_lines(&store, &EventQuery::default(), &mut json).unwrap();
    let lines: Vec<serde_json::Value> = String::from_utf8(json)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[2]["payload"]["i"], 2);
    assert_eq!(lines[0]["status"], "succeeded");
    let mut csv = Vec::new();
    offst_store::export::csv(&store, &EventQuery::default(), &mut csv).unwrap();
    let csv = String::from_utf8(csv).unwrap();
    let mut rows = csv.lines();
    assert_eq!(
        rows.next().unwrap(),
        "id,timestamp_ms,kind,friend,status,handled,payload"
    );
    assert_eq!(rows.count(), 3);
}

/// Copies a fixture database (a file written by an earlier version) into a fresh directory.
fn fixture(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    fs::copy(source, dir.path().join(DATABASE_FILE)).unwrap();
    dir
}

fn user_version(dir: &Path) -> i64 {
    rusqlite::Connection::open(dir.join(DATABASE_FILE))
        .unwrap()
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .unwrap()
}

#[test]
fn schema_1_databases_migrate_with_their_payment_records() {
    // Written by schema version 1: a seller with two invoices (one paid) and a fee rate, and the
    // buyer that paid it. Version 1 kept payment records as `credit/…` rows of `settings`.
    let seller_dir = fixture("v1-seller.sqlite");
    let buyer_dir = fixture("v1-buyer.sqlite");
    assert_eq!(user_version(seller_dir.path()), 1);

    let seller = SqliteStore::open(seller_dir.path()).unwrap();
    assert_eq!(seller.schema_version().unwrap(), SCHEMA_VERSION);
    seller.integrity_check().unwrap();
    let state = seller.load().unwrap();
    let book = &state.payments;
    assert_eq!(book.invoices.len(), 2);
    let mut amounts: Vec<(u128, offst_credit::PaymentStatus)> = book
        .invoices
        .values()
        .map(|record| (record.invoice.amount.0, record.status))
        .collect();
    amounts.sort_by_key(|(amount, _)| *amount);
    assert_eq!(
        amounts,
        vec![
            (30, offst_credit::PaymentStatus::Succeeded),
            (500, offst_credit::PaymentStatus::InProgress)
        ]
    );
    assert_eq!(book.rates.len(), 1);
    let account = book.accounts.values().next().unwrap();
    assert_eq!(account.received, offst_proto::Credits(30));
    assert_eq!(
        seller.setting("credit/account/FST").unwrap(),
        None,
        "moved out of settings"
    );

    let buyer = SqliteStore::open(buyer_dir.path()).unwrap();
    let state = buyer.load().unwrap();
    let payment = state.payments.payments.values().next().unwrap();
    assert_eq!(payment.status, offst_credit::PaymentStatus::Succeeded);
    assert!(
        payment.plain_lock.is_some(),
        "the receipt's secret survived"
    );
    let (_, friend) = state.friends.iter().next().unwrap();
    let offst_credit::ChannelStatus::Consistent(channel) = &friend.channel else {
        panic!("consistent channel expected");
    };
    let (_, sheet) = channel.sheet.currencies().next().unwrap();
    assert_eq!(sheet.balance, offst_proto::Balance(-30));
    assert_eq!(buyer.events(&EventQuery::default()).unwrap().len(), 1);

    // Reopening a migrated database changes nothing.
    drop(buyer);
    let again = SqliteStore::open(buyer_dir.path()).unwrap();
    assert_eq!(again.load().unwrap(), state);
}

#[test]
fn a_damaged_record_stops_the_migration_and_leaves_the_database_as_it_was() {
    let dir = fixture("v1-buyer.sqlite");
    {
        let conn = rusqlite::Connection::open(dir.path().join(DATABASE_FILE)).unwrap();
        conn.execute(
            "UPDATE settings SET value = x'00010203' WHERE key LIKE 'credit/payment/%'",
            [],
        )
        .unwrap();
    }
    let err = SqliteStore::open(dir.path()).unwrap_err();
    assert!(matches!(err, StoreError::InvalidData(_)), "{err}");
    assert_eq!(user_version(dir.path()), 1, "still version 1");
    let conn = rusqlite::Connection::open(dir.path().join(DATABASE_FILE)).unwrap();
    let rows: i64 = conn
        .query_row(
            "SELECT count(*) FROM settings WHERE key LIKE 'credit/%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(rows, 2, "the version 1 rows are untouched");
}
