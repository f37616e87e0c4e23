//! A tiny HTTP/1.1 server on 127.0.0.1 for the download tests: one thread, one request per
//! connection, replies chosen by a route function, every request recorded. Dropping it stops it.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

pub enum Reply {
    /// 200 with the body and its true Content-Length.
    Body(Vec<u8>),
    /// A status with a short text body.
    Status(u16),
    /// 302 to this location (a path on this server or a full URL).
    Redirect(String),
    /// 200 declaring `content_length`, sending only `send` bytes of `body`, then closing.
    Cut { body: Vec<u8>, content_length: u64, send: usize },
    /// 200 with the true Content-Length, `send` bytes of `body`, then nothing more until the
    /// client hangs up (or 20 s pass): a download in progress, for killing the client.
    Stall { body: Vec<u8>, send: usize },
}

#[derive(Clone, Debug)]
pub struct Request {
    pub path: String,
    pub authorization: Option<String>,
}

pub struct Server {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    pub fn start(route: impl Fn(&str) -> Reply + Send + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (log, stopped) = (requests.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                // A broken connection only fails the request it carried.
                let _ = serve(conn, &route, &log);
            }
        });
        Server { addr, requests, stop, thread: Some(thread) }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    pub fn hits(&self) -> usize {
        self.requests.lock().unwrap().len()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(mut conn: TcpStream, route: &impl Fn(&str) -> Reply, log: &Mutex<Vec<Request>>) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    conn.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut first = String::new();
    reader.read_line(&mut first)?;
    let path = first.split_whitespace().nth(1).unwrap_or("").to_string();
    let mut authorization = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("authorization")
        {
            authorization = Some(v.trim().to_string());
        }
    }
    if path.is_empty() {
        return Ok(()); // the wake-up connection from Drop
    }
    log.lock().unwrap().push(Request { path: path.clone(), authorization });
    let head = |status: &str, len: u64, extra: &str| {
        format!("HTTP/1.1 {status}\r\nContent-Length: {len}\r\nConnection: close\r\n{extra}\r\n")
    };
    match route(&path) {
        Reply::Body(body) => {
            conn.write_all(head("200 OK", body.len() as u64, "Content-Type: application/octet-stream\r\n").as_bytes())?;
            conn.write_all(&body)?;
        }
        Reply::Status(code) => {
            let body = format!("status {code}\n");
            conn.write_all(head(&format!("{code} Status"), body.len() as u64, "").as_bytes())?;
            conn.write_all(body.as_bytes())?;
        }
        Reply::Redirect(location) => {
            conn.write_all(head("302 Found", 0, &format!("Location: {location}\r\n")).as_bytes())?;
        }
        Reply::Cut { body, content_length, send } => {
            conn.write_all(head("200 OK", content_length, "").as_bytes())?;
            conn.write_all(&body[..send])?;
        }
        Reply::Stall { body, send } => {
            conn.write_all(head("200 OK", body.len() as u64, "").as_bytes())?;
            conn.write_all(&body[..send])?;
            conn.flush()?;
            conn.set_read_timeout(Some(Duration::from_millis(50)))?;
            let start = std::time::Instant::now();
            let mut buf = [0u8; 64];
            while start.elapsed() < Duration::from_secs(20) {
                match conn.read(&mut buf) {
                    Ok(0) => break, // the client is gone
                    Ok(_) => {}
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                    Err(_) => break,
                }
            }
        }
    }
    conn.flush()?;
    conn.shutdown(Shutdown::Write)
}
