//! Encrypted banks since format 4: packs are sealed in chunks that open on their own, so an
//! object read reads its frame's chunks and not its pack; every kind of damage to a sealed
//! pack (a flipped byte in a chunk or in the header that lays the chunks out, chunks
//! swapped within a pack or brought from another pack) fails the read, naming the object
//! and the pack; and a bank of format 3, whose packs were sealed whole, still reads,
//! verifies and is upgraded by its next write.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use podbank::bank::backend::{
    Backend, BackendError, CryptBackend, Kind, LocalBackend, ObjectInfo, PACK_CHUNK,
};
use podbank::bank::{format, Bank, BankKey, ObjectId, OpenOptions};

use crate::support::bank::{object, open, write_checkpoint};

/// The stored layout of a chunked pack (see `src/bank/backend/crypt.rs`).
const HEADER: usize = 16;
const NONCE: usize = 12;
const TAG: usize = 16;
const SEALED_CHUNK: usize = PACK_CHUNK as usize + NONCE + TAG;

/// Counts the bytes the bank reads from the store.
#[derive(Debug)]
struct Counting {
    inner: LocalBackend,
    read: AtomicU64,
}

#[async_trait]
impl Backend for Counting {
    fn location(&self) -> String {
        self.inner.location()
    }
    async fn put(&self, kind: Kind, name: &str, data: Bytes) -> Result<(), BackendError> {
        self.inner.put(kind, name, data).await
    }
    async fn get(&self, kind: Kind, name: &str) -> Result<Bytes, BackendError> {
        let data = self.inner.get(kind, name).await?;
        self.read.fetch_add(data.len() as u64, Ordering::SeqCst);
        Ok(data)
    }
    async fn get_range(
        &self,
        kind: Kind,
        name: &str,
        offset: u64,
        length: u64,
    ) -> Result<Bytes, BackendError> {
        let data = self.inner.get_range(kind, name, offset, length).await?;
        self.read.fetch_add(data.len() as u64, Ordering::SeqCst);
        Ok(data)
    }
    async fn list(&self, kind: Kind) -> Result<Vec<ObjectInfo>, BackendError> {
        self.inner.list(kind).await
    }
    async fn delete(&self, kind: Kind, name: &str) -> Result<(), BackendError> {
        self.inner.delete(kind, name).await
    }
}

fn pack_path(dir: &Path, pack: &str) -> PathBuf {
    dir.join("data").join(&pack[..2]).join(pack)
}

/// An encrypted bank holding one checkpoint of `n` objects; the objects are returned.
async fn encrypted_bank(dir: &Path, key: &BankKey, n: usize) -> anyhow::Result<Vec<Bytes>> {
    let bank = open(dir, Some(key.clone())).await?;
    let objects: Vec<Bytes> = (0..n).map(|i| object(i, 1)).collect();
    write_checkpoint(&bank, "sealed", objects.clone()).await?;
    Ok(objects)
}

/// What reading `object` from the bank in `dir` gives, on a freshly opened bank (nothing
/// cached): `Ok` or the error's text.
async fn read(dir: &Path, key: &BankKey, object: &Bytes) -> anyhow::Result<Result<(), String>> {
    let bank = open(dir, Some(key.clone())).await?;
    let id = ObjectId::of(object);
    Ok(match bank.read_object(&id, "the test").await {
        Ok(data) if data == *object => Ok(()),
        Ok(_) => Err("read other bytes".into()),
        Err(e) => Err(e.to_string()),
    })
}

/// The objects whose frame lies in chunk `chunk` of `pack`, and every pack's name.
async fn in_chunk(
    dir: &Path,
    key: &BankKey,
    objects: &[Bytes],
    pack: Option<&str>,
    chunk: u64,
) -> anyhow::Result<Vec<(Bytes, String)>> {
    let bank = open(dir, Some(key.clone())).await?;
    let index = bank.index().await;
    let mut out = Vec::new();
    for o in objects {
        let loc = index
            .get(&ObjectId::of(o))
            .ok_or_else(|| anyhow::anyhow!("not indexed"))?;
        let first = loc.offset / PACK_CHUNK;
        let last = (loc.offset + u64::from(loc.length) - 1) / PACK_CHUNK;
        if pack.is_none_or(|p| p == &*loc.pack) && (first..=last).contains(&chunk) {
            out.push((o.clone(), loc.pack.to_string()));
        }
    }
    Ok(out)
}

fn assert_named(result: Result<(), String>, object: &Bytes, pack: &str, what: &str) {
    let id = ObjectId::of(object).to_hex();
    match result {
        Ok(()) => panic!("{what}: the object read"),
        Err(e) => assert!(
            e.contains(&id) && e.contains(pack),
            "{what}: the error does not name object {id} and pack {pack}: {e}"
        ),
    }
}

#[tokio::test]
async fn an_object_read_reads_its_chunks_not_its_pack_and_a_frame_opens_once() -> anyhow::Result<()>
{
    let dir = tempfile::tempdir()?;
    let key = BankKey::generate();
    let objects = encrypted_bank(dir.path(), &key, 3000).await?;
    let counting = Arc::new(Counting {
        inner: LocalBackend::new(dir.path())?,
        read: AtomicU64::new(0),
    });
    let bank = Bank::open(
        counting.clone(),
        OpenOptions {
            key: Some(key.clone()),
            create: false,
            pack_target_bytes: None,
        },
    )
    .await?;
    let index = bank.index().await;
    let id = ObjectId::of(&objects[1500]);
    let loc = index
        .get(&id)
        .ok_or_else(|| anyhow::anyhow!("not indexed"))?;
    let pack_size = std::fs::metadata(pack_path(dir.path(), &loc.pack))?.len();
    let before = counting.read.load(Ordering::SeqCst);
    assert_eq!(bank.read_object(&id, "the test").await?, objects[1500]);
    let one = counting.read.load(Ordering::SeqCst) - before;
    println!(
        "one object from an encrypted bank: {one} bytes read of a {pack_size}-byte pack \
         (its frame: {} bytes)",
        loc.length
    );
    // The header, and the one or two chunks that the frame lies in.
    let chunks =
        (loc.offset + u64::from(loc.length) - 1) / PACK_CHUNK - loc.offset / PACK_CHUNK + 1;
    assert_eq!(one, HEADER as u64 + chunks * SEALED_CHUNK as u64);
    assert!(one * 2 < pack_size, "{one} bytes of {pack_size}");

    // Another object of the same frame: nothing read, nothing opened again.
    let neighbour = objects
        .iter()
        .find(|o| {
            *o != &objects[1500]
                && index.get(&ObjectId::of(o)).map(|l| l.offset) == Some(loc.offset)
        })
        .ok_or_else(|| anyhow::anyhow!("the frame holds one object"))?;
    let before = counting.read.load(Ordering::SeqCst);
    assert_eq!(
        &bank
            .read_object(&ObjectId::of(neighbour), "the test")
            .await?,
        neighbour
    );
    assert_eq!(counting.read.load(Ordering::SeqCst), before);

    // verify reads every pack whole, and finds it intact.
    let report = bank.verify(None).await?;
    assert!(report.is_clean(), "{:?}", report.problems);
    assert!(report.objects >= 3000, "{report:?}");
    Ok(())
}

#[tokio::test]
async fn a_flipped_byte_anywhere_in_a_sealed_pack_fails_naming_object_and_pack(
) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let key = BankKey::generate();
    let objects = encrypted_bank(dir.path(), &key, 3000).await?;
    let victims = in_chunk(dir.path(), &key, &objects, None, 1).await?;
    let (object, pack) = victims
        .first()
        .ok_or_else(|| anyhow::anyhow!("no frame in chunk 1"))?;
    let path = pack_path(dir.path(), pack);
    let original = std::fs::read(&path)?;
    let chunk1 = HEADER + SEALED_CHUNK;
    for (what, at) in [
        ("the header's magic", 0),
        ("the header's chunk size", 5),
        ("the header's plain length", 9),
        ("a chunk's nonce", chunk1 + 3),
        ("a chunk's ciphertext", chunk1 + NONCE + 1000),
        ("a chunk's tag", chunk1 + SEALED_CHUNK - 2),
    ] {
        let mut damaged = original.clone();
        damaged[at] ^= 0x20;
        std::fs::write(&path, &damaged)?;
        assert_named(read(dir.path(), &key, object).await?, object, pack, what);
        let bank = open(dir.path(), Some(key.clone())).await?;
        let report = bank.verify(None).await?;
        assert!(
            report
                .problems
                .iter()
                .any(|p| p.file.as_ref().is_some_and(|f| f.name == *pack)),
            "{what}: verify does not name pack {pack}: {:?}",
            report.problems
        );
    }
    std::fs::write(&path, &original)?;
    assert_eq!(read(dir.path(), &key, object).await?, Ok(()));
    Ok(())
}

#[tokio::test]
async fn chunks_swapped_within_a_pack_or_brought_from_another_fail_naming_object_and_pack(
) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let key = BankKey::generate();
    let objects = encrypted_bank(dir.path(), &key, 3000).await?;
    let victims = in_chunk(dir.path(), &key, &objects, None, 1).await?;
    let (object, pack) = victims
        .first()
        .ok_or_else(|| anyhow::anyhow!("no frame in chunk 1"))?;
    let path = pack_path(dir.path(), pack);
    let original = std::fs::read(&path)?;
    let chunk = |data: &[u8], i: usize| data[HEADER + i * SEALED_CHUNK..][..SEALED_CHUNK].to_vec();
    let put_chunk = |data: &mut Vec<u8>, i: usize, sealed: &[u8]| {
        data[HEADER + i * SEALED_CHUNK..][..SEALED_CHUNK].copy_from_slice(sealed)
    };
    assert!(
        original.len() > HEADER + 3 * SEALED_CHUNK,
        "a pack of 3 full chunks"
    );

    // Chunks 1 and 2 swapped.
    let mut swapped = original.clone();
    let (one, two) = (chunk(&original, 1), chunk(&original, 2));
    put_chunk(&mut swapped, 1, &two);
    put_chunk(&mut swapped, 2, &one);
    std::fs::write(&path, &swapped)?;
    assert_named(
        read(dir.path(), &key, object).await?,
        object,
        pack,
        "swapped chunks",
    );

    // Chunk 1 of another pack (same position, same header but for the length).
    let bank = open(dir.path(), Some(key.clone())).await?;
    let other = bank
        .index()
        .await
        .packs()
        .iter()
        .map(|p| p.name.to_string())
        .find(|p| {
            p != pack
                && std::fs::metadata(pack_path(dir.path(), p))
                    .is_ok_and(|m| m.len() as usize > HEADER + 2 * SEALED_CHUNK)
        })
        .ok_or_else(|| anyhow::anyhow!("one pack only"))?;
    let foreign = chunk(&std::fs::read(pack_path(dir.path(), &other))?, 1);
    let mut moved = original.clone();
    put_chunk(&mut moved, 1, &foreign);
    std::fs::write(&path, &moved)?;
    assert_named(
        read(dir.path(), &key, object).await?,
        object,
        pack,
        "a chunk of another pack",
    );

    // A whole pack stored under another pack's name.
    std::fs::write(&path, std::fs::read(pack_path(dir.path(), &other))?)?;
    assert_named(
        read(dir.path(), &key, object).await?,
        object,
        pack,
        "another pack",
    );

    std::fs::write(&path, &original)?;
    assert_eq!(read(dir.path(), &key, object).await?, Ok(()));
    Ok(())
}

#[tokio::test]
async fn a_format_3_encrypted_bank_reads_verifies_and_is_upgraded_by_its_next_write(
) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let key = BankKey::generate();
    let objects = encrypted_bank(dir.path(), &key, 1500).await?;
    // Rewrite it as format 3 wrote it: each pack sealed whole, the config at version 3.
    let raw = Arc::new(LocalBackend::new(dir.path())?);
    let crypt = CryptBackend::new(raw.clone(), key.clone());
    let packs = raw.list(Kind::Pack).await?;
    assert!(packs.len() >= 2, "{packs:?}");
    for p in &packs {
        let plain = crypt.get(Kind::Pack, &p.name).await?;
        let whole = key.seal(format!("pack/{}", p.name).as_bytes(), &plain);
        raw.put(Kind::Pack, &p.name, Bytes::from(whole)).await?;
    }
    let config_version = |raw: Arc<LocalBackend>| async move {
        let data = raw.get(Kind::Config, "config").await?;
        anyhow::Ok(format::decode_config(&data)?.version)
    };
    let mut config = format::decode_config(&raw.get(Kind::Config, "config").await?)?;
    config.version = 3;
    raw.put(Kind::Config, "config", format::encode_config(&config))
        .await?;

    let bank = open(dir.path(), Some(key.clone())).await?;
    for o in objects.iter().step_by(37) {
        assert_eq!(bank.read_object(&ObjectId::of(o), "the test").await?, *o);
    }
    let report = bank.verify(None).await?;
    assert!(report.is_clean(), "{:?}", report.problems);
    assert_eq!(
        config_version(raw.clone()).await?,
        3,
        "reading changes nothing"
    );

    // A flipped byte in a whole-sealed pack is named as before.
    let victim = &objects[700];
    let pack = bank
        .index()
        .await
        .get(&ObjectId::of(victim))
        .map(|l| l.pack.to_string())
        .ok_or_else(|| anyhow::anyhow!("not indexed"))?;
    let path = pack_path(dir.path(), &pack);
    let original = std::fs::read(&path)?;
    let mut damaged = original.clone();
    damaged[original.len() / 2] ^= 1;
    std::fs::write(&path, &damaged)?;
    assert_named(
        read(dir.path(), &key, victim).await?,
        victim,
        &pack,
        "format 3 pack",
    );
    std::fs::write(&path, &original)?;

    // The next write upgrades the config and seals its packs in chunks; all reads back.
    let more: Vec<Bytes> = (1500..3000).map(|i| object(i, 1)).collect();
    write_checkpoint(
        &bank,
        "after",
        objects.iter().chain(&more).cloned().collect(),
    )
    .await?;
    assert_eq!(config_version(raw.clone()).await?, format::FORMAT_VERSION);
    let chunked = raw
        .list(Kind::Pack)
        .await?
        .into_iter()
        .filter(|p| !packs.iter().any(|old| old.name == p.name))
        .filter(|p| {
            std::fs::read(pack_path(dir.path(), &p.name)).is_ok_and(|d| d.starts_with(b"PBS4"))
        })
        .count();
    assert!(chunked > 0, "no new pack is sealed in chunks");
    let bank = open(dir.path(), Some(key.clone())).await?;
    for o in objects.iter().chain(&more).step_by(41) {
        assert_eq!(bank.read_object(&ObjectId::of(o), "the test").await?, *o);
    }
    let report = bank.verify(None).await?;
    assert!(report.is_clean(), "{:?}", report.problems);
    assert_eq!(report.checkpoints, 2);
    Ok(())
}
