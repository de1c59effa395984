//! Fuzzes every record decoder (`crimage::records`, the module's own): whatever the payload,
//! each returns a value or an error, and never panics. The first byte picks the record kind.

#![no_main]

use crimage::format::RecordKind;
use crimage::records;
use libfuzzer_sys::fuzz_target;

fn decode(kind: RecordKind, p: &[u8]) {
    match kind {
        RecordKind::Tree => {
            if let Ok(t) = records::Tree::decode(p) {
                for e in t.entries() {
                    let _ = e;
                }
            }
        }
        RecordKind::Uts => drop(records::Uts::decode(p)),
        RecordKind::Task => drop(records::Task::decode(p)),
        RecordKind::Creds => {
            if let Ok(c) = records::Creds::decode(p) {
                assert_eq!(c.groups().count(), c.rec.ngroups as usize);
            }
        }
        RecordKind::Rlimits => drop(records::Rlimits::decode(p)),
        RecordKind::Fs => drop(records::Fs::decode(p)),
        RecordKind::File => drop(records::File::decode(p)),
        RecordKind::Pipe => {
            // A decoded pipe's buffers are a page or less each and add up to its bytes.
            if let Ok(pipe) = records::Pipe::decode(p) {
                assert!(pipe
                    .segments()
                    .all(|s| (1..=records::PAGE_SIZE).contains(&s.len)));
                let total: usize = pipe.segments().map(|s| s.len).sum();
                assert!(pipe.rec.segments == 0 || total == pipe.data.len());
            }
        }
        RecordKind::Event => drop(records::event(p)),
        RecordKind::Lock => drop(records::lock(p)),
        RecordKind::Epoll => {
            if let Ok(e) = records::Epoll::decode(p) {
                e.watches().for_each(drop);
            }
        }
        RecordKind::Shmem => drop(records::Shmem::decode(p)),
        RecordKind::Mm => {
            if let Ok(m) = records::Mm::decode(p) {
                assert_eq!(m.auxv().count(), m.rec.auxv_words as usize);
            }
        }
        RecordKind::Vma => drop(records::Vma::decode(p)),
        RecordKind::Pages => {
            if let Ok(pages) = records::Pages::decode(p) {
                let (first, last) = pages.span();
                assert!(first <= last && pages.iter().count() == pages.count as usize);
            }
        }
        RecordKind::Parent => {
            if let Ok(parent) = records::Parent::decode(p) {
                assert!(parent.path.len() == parent.rec.path_len as usize);
            }
        }
        RecordKind::Precopy => {
            if let Ok(pre) = records::Precopy::decode(p) {
                assert!(pre.mm != 0);
                assert_eq!(pre.pages.data().len(), pre.pages.list().data_len());
            }
        }
        RecordKind::Keep => {
            if let Ok(keep) = records::Keep::decode(p) {
                let (first, end) = keep.span();
                assert!(first < end && keep.runs().count() == keep.head.count as usize);
                assert!(keep.pages() >= keep.head.count as u64);
            }
        }
        RecordKind::Sighand => drop(records::Sighand::decode(p)),
        RecordKind::SigPending => {
            if let Ok(q) = records::SigPending::decode(p) {
                assert!(q.signals().all(|s| s.is_ok()));
            }
        }
        RecordKind::Itimers => drop(records::itimers(p)),
        RecordKind::Regs => {
            if let Ok(r) = records::Regs::decode(p) {
                let _ = r.reg(26);
            }
        }
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, payload)) = data.split_first() else {
        return;
    };
    let kind = RecordKind::ALL[pick as usize % RecordKind::ALL.len()];
    decode(kind, payload);
});
