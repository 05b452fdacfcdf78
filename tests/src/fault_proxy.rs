//! A TCP proxy a test puts between the relays and their database, to make the
//! network misbehave on command: [`Fault::Refuse`] new connections,
//! [`Fault::Drop`] every byte silently (a cut where packets vanish and nobody
//! says so), [`Fault::Delay`] every byte, or [`FaultProxy::cut`] every open
//! connection at once. [`FaultProxy::heal`] goes back to passing bytes (and
//! closes connections whose stream lost bytes meanwhile).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxy does with the traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Pass bytes both ways.
    Pass,
    /// Close every new connection at once; open ones carry on.
    Refuse,
    /// Accept connections and read every byte, forward none: a silent cut.
    Drop,
    /// Forward each read only after this long.
    Delay(Duration),
}

#[derive(Debug, Clone, Copy)]
struct State {
    fault: Fault,
    /// Raised by [`FaultProxy::cut`]: connections opened before end.
    cuts: u64,
}

/// The proxy; stopped (and every connection closed) when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    state: watch::Sender<State>,
    accept: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Listens on a free loopback port and forwards to `target`.
    pub async fn start(target: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (state, rx) = watch::channel(State {
            fault: Fault::Pass,
            cuts: 0,
        });
        let accept = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                let now = *rx.borrow();
                if now.fault == Fault::Refuse {
                    drop(client);
                    continue;
                }
                tokio::spawn(connection(client, target, rx.clone(), now.cuts));
            }
        });
        Ok(Self {
            addr,
            state,
            accept,
        })
    }

    /// Starts a proxy to the host and port of a `postgres://` URL; the same URL
    /// through the proxy.
    pub async fn for_postgres(url: &str) -> std::io::Result<(Self, String)> {
        let (prefix, host_port, suffix) = split_url(url).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a postgres:// URL")
        })?;
        let with_port = if host_port.contains(':') {
            host_port.to_owned()
        } else {
            format!("{host_port}:5432")
        };
        let target = tokio::net::lookup_host(with_port)
            .await?
            .next()
            .ok_or_else(|| std::io::Error::other("the database host has no address"))?;
        let proxy = Self::start(target).await?;
        let through = format!("{prefix}{}{suffix}", proxy.addr);
        Ok((proxy, through))
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// From now on, do `fault`.
    pub fn set(&self, fault: Fault) {
        self.state.send_modify(|s| s.fault = fault);
    }

    /// Closes every open connection now.
    pub fn cut(&self) {
        self.state.send_modify(|s| s.cuts += 1);
    }

    /// Passes bytes again; connections that lost bytes meanwhile are closed.
    pub fn heal(&self) {
        self.state.send_modify(|s| {
            s.fault = Fault::Pass;
            s.cuts += 1;
        });
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

/// (`postgres://user@`, `host:port`, `/db?...`) of a URL.
fn split_url(url: &str) -> Option<(&str, &str, &str)> {
    let scheme_end = url.find("://")? + 3;
    let rest = url.get(scheme_end..)?;
    let host_start = scheme_end + rest.find('@').map_or(0, |i| i + 1);
    let after = url.get(host_start..)?;
    let host_end = host_start + after.find(['/', '?']).unwrap_or(after.len());
    Some((
        url.get(..host_start)?,
        url.get(host_start..host_end)?,
        url.get(host_end..)?,
    ))
}

async fn connection(client: TcpStream, target: SocketAddr, rx: watch::Receiver<State>, born: u64) {
    let _ = client.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    if rx.borrow().fault == Fault::Drop {
        // A silent cut: the connection opens, nothing ever reaches the database.
        swallow(client_read, rx, born).await;
        return;
    }
    let Ok(server) = TcpStream::connect(target).await else {
        return;
    };
    let _ = server.set_nodelay(true);
    let (server_read, server_write) = server.into_split();
    tokio::select! {
        _ = pump(client_read, server_write, rx.clone(), born) => {}
        _ = pump(server_read, client_write, rx, born) => {}
    }
}

/// Reads and forgets everything until the peer closes or a cut.
async fn swallow(mut from: OwnedReadHalf, mut rx: watch::Receiver<State>, born: u64) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        tokio::select! {
            r = from.read(&mut buf) => match r {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            },
            c = rx.changed() => {
                if c.is_err() || rx.borrow().cuts != born {
                    return;
                }
            }
        }
    }
}

async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    mut rx: watch::Receiver<State>,
    born: u64,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = tokio::select! {
            r = from.read(&mut buf) => match r {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
            c = rx.changed() => {
                if c.is_err() || rx.borrow().cuts != born {
                    return;
                }
                continue;
            }
        };
        let fault = rx.borrow().fault;
        match fault {
            Fault::Drop => continue,
            Fault::Delay(d) => tokio::time::sleep(d).await,
            Fault::Pass | Fault::Refuse => {}
        }
        if rx.borrow().cuts != born || to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_postgres_url_is_split_around_its_host() {
        assert_eq!(
            split_url("postgres://postgres@127.0.0.1:5432/test"),
            Some(("postgres://postgres@", "127.0.0.1:5432", "/test"))
        );
        assert_eq!(
            split_url("postgres://db/x?sslmode=disable"),
            Some(("postgres://", "db", "/x?sslmode=disable"))
        );
    }

    #[tokio::test]
    async fn bytes_pass_then_vanish_silently_then_pass_again() {
        let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target = echo.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = echo.accept().await.unwrap();
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        let proxy = FaultProxy::start(target).await.unwrap();
        let mut c = TcpStream::connect(proxy.addr()).await.unwrap();
        c.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        c.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");

        proxy.set(Fault::Drop);
        c.write_all(b"lost").await.unwrap();
        let silent = tokio::time::timeout(Duration::from_millis(300), c.read_exact(&mut buf)).await;
        assert!(silent.is_err(), "nothing comes back through a silent cut");

        proxy.heal();
        let mut c = TcpStream::connect(proxy.addr()).await.unwrap();
        c.write_all(b"back").await.unwrap();
        c.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"back");

        proxy.set(Fault::Refuse);
        let mut refused = TcpStream::connect(proxy.addr()).await.unwrap();
        let n = refused.read(&mut buf).await;
        assert!(
            matches!(n, Ok(0) | Err(_)),
            "a refused connection ends at once"
        );
    }
}
