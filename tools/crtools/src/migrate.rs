//! Live migration: the connection between `ckpt PID --migrate ADDR:PORT` (the source) and
//! `restart --listen ADDR:PORT` (the destination).
//!
//! The source connects and sends the image exactly as `ckpt --thawed -o -` writes it: the
//! precopy rounds while its tree runs, then the frozen round. It then shuts down its side of the
//! connection and, still frozen, waits. The destination restores the tree from the stream (it
//! stages the precopy pages while the source's rounds still run) and answers with one line:
//! [`RUNNING`] once every task of the tree has returned to user space, or `failed: REASON`.
//!
//! The source kills its tree only on [`RUNNING`]. On anything else (a failure line, the
//! connection closing or resetting, no answer within the time limit, its own write failing
//! mid-stream) it thaws its tree, which runs on as if no checkpoint had been taken.
//!
//! The one window left is the one every two-party protocol has: a [`RUNNING`] that the
//! destination sent but that never reaches the source (the network fails in that instant, for
//! longer than TCP retries). Then both trees run.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::Fail;

/// The destination's answer once the tree runs there.
pub const RUNNING: &str = "cr-migrate: running";
/// The longest answer the source reads: the destination's reason is one line.
const MAX_ANSWER: u64 = 4096;

/// Resolves `ADDR:PORT` (a name or an address) to the first address it gives.
pub fn resolve(spec: &str) -> Result<SocketAddr, Fail> {
    spec.to_socket_addrs()
        .map_err(|e| Fail::Usage(format!("{spec}: {e} (give ADDR:PORT)")))?
        .next()
        .ok_or_else(|| Fail::Usage(format!("{spec}: no address")))
}

/// The source's end: connects to the destination.
pub fn connect(addr: SocketAddr) -> Result<TcpStream, Fail> {
    let stream = TcpStream::connect(addr)
        .map_err(|e| failed!("cannot reach the destination {addr}: {e}"))?;
    // The kernel writes whole batches of pages: Nagle would only delay the last of each.
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// The destination's end: listens on `addr`, tells `announce` where, and takes one connection.
pub fn accept_one(addr: SocketAddr, announce: impl FnOnce(SocketAddr)) -> Result<TcpStream, Fail> {
    let listener = TcpListener::bind(addr).map_err(|e| failed!("listening on {addr}: {e}"))?;
    announce(listener.local_addr()?);
    let (stream, _) = listener
        .accept()
        .map_err(|e| failed!("accepting on {addr}: {e}"))?;
    Ok(stream)
}

/// The source, once the image is written: ends its side, and waits up to `timeout` for the
/// destination's answer. `Ok` only for [`RUNNING`].
pub fn await_running(stream: &TcpStream, timeout: Duration) -> Result<(), Fail> {
    stream
        .shutdown(Shutdown::Write)
        .map_err(|e| failed!("the destination is gone: {e}"))?;
    stream.set_read_timeout(Some(timeout))?;
    let mut line = String::new();
    match BufReader::new(stream.take(MAX_ANSWER)).read_line(&mut line) {
        Ok(_) => parse_answer(&line),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            fail!("the destination did not answer within {timeout:?}")
        }
        Err(e) => fail!("the destination is gone: {e}"),
    }
}

/// What the destination's answer means.
fn parse_answer(line: &str) -> Result<(), Fail> {
    let line = line.trim_end_matches('\n');
    if line == RUNNING {
        return Ok(());
    }
    match line.strip_prefix("failed: ") {
        Some(reason) => fail!("the destination failed: {reason}"),
        None if line.is_empty() => fail!("the destination closed the connection without answering"),
        None => fail!("the destination answered {line:?}"),
    }
}

/// The destination, once the tree runs: tells the source, which then kills its own. `Err` when
/// the answer cannot be sent: the source thaws its tree, and the caller must end this one.
pub fn report_running(mut stream: &TcpStream) -> Result<(), Fail> {
    writeln!(stream, "{RUNNING}").map_err(|e| failed!("the source is gone: {e}"))
}

/// The destination, when the restart failed: tells the source why, so that it thaws its tree.
/// The rest of the image is read and dropped: closing with unread data would reset the
/// connection, and the source would see its write fail instead of the reason.
pub fn report_failure(mut stream: &TcpStream, reason: &str, timeout: Duration) {
    // One line: the reason must not end the answer early.
    let reason = reason.replace('\n', " ");
    let _ = writeln!(stream, "failed: {reason}");
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(timeout));
    let _ = io::copy(&mut stream, &mut io::sink());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_running_lets_the_source_kill_its_tree() {
        assert!(parse_answer("cr-migrate: running\n").is_ok());
        assert!(parse_answer("cr-migrate: running").is_ok());
        for bad in [
            "",
            "failed: pid 7 is in use\n",
            "cr-migrate: running too\n",
            "cr-migrate: runnin",
        ] {
            assert!(parse_answer(bad).is_err(), "{bad:?}");
        }
        let Err(Fail::Failed(m)) = parse_answer("failed: pid 7 is in use\n") else {
            panic!()
        };
        assert_eq!(m, "the destination failed: pid 7 is in use");
    }

    /// The whole exchange over a real connection: the image goes one way, the answer comes back,
    /// and a destination that closes early or says nothing is a failure.
    #[test]
    fn an_exchange_over_loopback() {
        let any = resolve("127.0.0.1:0").unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let destination = std::thread::spawn(move || {
            let stream = accept_one(any, |a| tx.send(a).unwrap()).unwrap();
            let mut image = Vec::new();
            (&stream).read_to_end(&mut image).unwrap();
            assert_eq!(image, b"image");
            report_running(&stream)
        });
        let source = connect(rx.recv().unwrap()).unwrap();
        (&source).write_all(b"image").unwrap();
        await_running(&source, Duration::from_secs(10)).unwrap();
        destination.join().unwrap().unwrap();

        // A destination that reads the image and hangs up without an answer.
        let (tx, rx) = std::sync::mpsc::channel();
        let destination = std::thread::spawn(move || {
            let stream = accept_one(any, |a| tx.send(a).unwrap()).unwrap();
            let mut image = Vec::new();
            (&stream).read_to_end(&mut image).unwrap();
        });
        let source = connect(rx.recv().unwrap()).unwrap();
        (&source).write_all(b"image").unwrap();
        let Err(Fail::Failed(m)) = await_running(&source, Duration::from_secs(10)) else {
            panic!()
        };
        assert!(m.contains("without answering"), "{m}");
        destination.join().unwrap();

        // A destination that says nothing within the limit.
        let (tx, rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let destination = std::thread::spawn(move || {
            let _stream = accept_one(any, |a| tx.send(a).unwrap()).unwrap();
            let _ = done_rx.recv();
        });
        let source = connect(rx.recv().unwrap()).unwrap();
        let Err(Fail::Failed(m)) = await_running(&source, Duration::from_millis(50)) else {
            panic!()
        };
        assert!(m.contains("did not answer"), "{m}");
        done_tx.send(()).unwrap();
        destination.join().unwrap();
    }
}
