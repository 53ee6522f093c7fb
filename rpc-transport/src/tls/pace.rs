//! How much encrypted data a TLS connection holds before it writes it out.
//!
//! rustls encrypts what it is given into records and keeps them until the
//! socket takes them, up to a limit: 64 KiB by default. A large message is
//! encrypted and written that much at a time, and its receiver decrypts a
//! piece only once the whole piece has been written. Half that, and the
//! peer starts decrypting sooner while this side encrypts the rest: a
//! 1 MiB echo went from 1,115 to 1,166 calls a second (medians of six
//! alternating runs). More is slower: in other runs, 256 KiB gave 722
//! against the default's 1,008. Messages smaller than the limit are
//! written as before.

/// The encrypted bytes a connection holds before they must go out.
pub(super) const SEND_BUFFER: usize = 32 * 1024;

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::sync::{Arc, Mutex};
    use std::task::{Context, Poll};

    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream, ReadBuf};

    use super::*;
    use crate::tls::test_pem::Pem;
    use crate::tls::{Acceptor, connect};

    /// One end of a pipe, the size of each write it took logged.
    struct Logged {
        inner: DuplexStream,
        writes: Arc<Mutex<Vec<usize>>>,
    }

    impl AsyncRead for Logged {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.inner).poll_read(cx, buf)
        }
    }

    impl AsyncWrite for Logged {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            let wrote = Pin::new(&mut self.inner).poll_write(cx, buf);
            if let Poll::Ready(Ok(n)) = wrote {
                self.writes.lock().unwrap().push(n);
            }
            wrote
        }

        /// As a socket does: every piece in one write (rustls hands over
        /// all the records it holds at once).
        fn poll_write_vectored(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            bufs: &[std::io::IoSlice<'_>],
        ) -> Poll<std::io::Result<usize>> {
            let all: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
            self.poll_write(cx, &all)
        }

        fn is_write_vectored(&self) -> bool {
            true
        }

        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.inner).poll_flush(cx)
        }

        fn poll_shutdown(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.inner).poll_shutdown(cx)
        }
    }

    /// The largest of the writes logged since `from`.
    fn largest(writes: &Mutex<Vec<usize>>, from: usize) -> usize {
        writes.lock().unwrap()[from..]
            .iter()
            .copied()
            .max()
            .unwrap_or(0)
    }

    #[tokio::test]
    async fn a_large_message_goes_out_a_limit_at_a_time_both_ways() {
        let pem = Pem::new("pace");
        let (near, far) = tokio::io::duplex(4 << 20);
        let (to_server, to_client) = (Arc::default(), Arc::default());
        let near = Logged {
            inner: near,
            writes: Arc::clone(&to_server),
        };
        let far = Logged {
            inner: far,
            writes: Arc::clone(&to_client),
        };
        let acceptor = Acceptor::new(&pem.server()).unwrap();
        let accepted = tokio::spawn(async move { acceptor.accept(far, "test").await });
        let (mut client, _) = connect(near, &pem.client(), "localhost:1").await.unwrap();
        let (mut server, _) = accepted.await.unwrap().unwrap();

        one_way(&mut client, &mut server, &to_server).await;
        one_way(&mut server, &mut client, &to_client).await;
    }

    /// Sends 256 KiB from `from` to `to`, whose writes are logged in `writes`,
    /// and checks the largest of them.
    async fn one_way(
        from: &mut (impl AsyncWrite + Unpin),
        to: &mut (impl AsyncRead + Unpin),
        writes: &Mutex<Vec<usize>>,
    ) {
        let message = vec![7u8; 256 * 1024];
        let mark = writes.lock().unwrap().len();
        from.write_all(&message).await.unwrap();
        from.flush().await.unwrap();
        let mut back = vec![0; message.len()];
        to.read_exact(&mut back).await.unwrap();
        assert_eq!(back, message);
        // Records of 16 KiB and their 22 bytes each; 64 KiB and more
        // without the limit.
        let most = largest(writes, mark);
        assert!(
            (16 * 1024..=SEND_BUFFER + 256).contains(&most),
            "the largest write was {most} bytes"
        );
    }
}
