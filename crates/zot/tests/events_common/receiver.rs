//! An HTTP receiver of CloudEvents (binary content mode) whose behaviour
//! the test switches: accept (200), fail (500), hang (answer nothing until
//! the sender gives up), or be down (nothing listening on its port).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Accept,
    Fail,
    Hang,
    Down,
}

/// One request the receiver accepted (answered 200).
#[derive(Debug, Clone)]
pub struct Received {
    /// Header names lower-cased.
    pub headers: BTreeMap<String, String>,
    pub data: Value,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }

    pub fn event_type(&self) -> &str {
        self.header("ce-type")
    }
}

#[derive(Default)]
struct State {
    mode: Option<Mode>,
    accepted: Vec<Received>,
    refused: usize,
    hung: usize,
}

pub struct Receiver {
    port: u16,
    state: Arc<Mutex<State>>,
}

impl Receiver {
    pub fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the receiver");
        let port = listener.local_addr().expect("receiver address").port();
        let state = Arc::new(Mutex::new(State {
            mode: Some(Mode::Accept),
            ..State::default()
        }));
        let s = state.clone();
        thread::spawn(move || serve(listener, port, s));
        Receiver { port, state }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/events", self.port)
    }

    pub fn set(&self, mode: Mode) {
        self.state.lock().expect("receiver state").mode = Some(mode);
        // Let the accept loop notice (it polls every 20 ms).
        thread::sleep(Duration::from_millis(100));
    }

    pub fn accepted(&self) -> Vec<Received> {
        self.state.lock().expect("receiver state").accepted.clone()
    }

    /// Requests answered 500, and requests left hanging.
    pub fn failures(&self) -> (usize, usize) {
        let s = self.state.lock().expect("receiver state");
        (s.refused, s.hung)
    }

    /// Waits until `done` holds for the accepted events (at most 60 s).
    pub fn wait_for(&self, what: &str, done: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let start = Instant::now();
        loop {
            let got = self.accepted();
            if done(&got) {
                return got;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "waiting for {what}; received: {:#?}",
                got.iter()
                    .map(|r| (r.event_type().to_owned(), r.data.clone()))
                    .collect::<Vec<_>>()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until `done` holds for the failure counts (at most 60 s).
    pub fn wait_failures(&self, done: impl Fn((usize, usize)) -> bool) {
        let start = Instant::now();
        while !done(self.failures()) {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "{:?}",
                self.failures()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }
}

fn mode(state: &Mutex<State>) -> Mode {
    state
        .lock()
        .expect("receiver state")
        .mode
        .unwrap_or(Mode::Accept)
}

/// Accepts connections while not `Down`; while down the port is closed.
fn serve(listener: TcpListener, port: u16, state: Arc<Mutex<State>>) {
    let mut listener = Some(listener);
    loop {
        if mode(&state) == Mode::Down {
            listener = None;
            thread::sleep(Duration::from_millis(20));
            continue;
        }
        let l = match &listener {
            Some(l) => l,
            None => match TcpListener::bind(("127.0.0.1", port)) {
                Ok(l) => listener.insert(l),
                Err(_) => {
                    thread::sleep(Duration::from_millis(20));
                    continue;
                }
            },
        };
        l.set_nonblocking(true).expect("nonblocking listener");
        match l.accept() {
            Ok((stream, _)) => {
                let s = state.clone();
                thread::spawn(move || handle(stream, &s));
            }
            Err(_) => thread::sleep(Duration::from_millis(20)),
        }
    }
}

fn handle(stream: TcpStream, state: &Mutex<State>) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(&stream);
    let mut headers = BTreeMap::new();
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let mut out = &stream;
    match mode(state) {
        Mode::Accept => {
            let data = serde_json::from_slice(&body).unwrap_or(Value::Null);
            state
                .lock()
                .expect("receiver state")
                .accepted
                .push(Received { headers, data });
            let _ =
                out.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
        Mode::Fail | Mode::Down => {
            state.lock().expect("receiver state").refused += 1;
            let _ = out.write_all(
                b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            );
        }
        Mode::Hang => {
            state.lock().expect("receiver state").hung += 1;
            // Longer than the sink's timeout: it gives up first.
            thread::sleep(Duration::from_secs(4));
        }
    }
}
