//! Tiny HTTP servers for client tests (here and, with the `testsuite`
//! feature, in other crates): canned answers, one connection per request.
//! They panic on any I/O failure, as a test should.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread::JoinHandle;

/// Serves one request with `status` (e.g. `404 Not Found`) and a JSON `body`;
/// the handle yields the request's head (lowercased) and body.
pub fn serve_once(status: &str, body: &str) -> (String, JoinHandle<(String, String)>) {
    let (url, handle) = serve_sequence(&[(status, body)]);
    let handle = std::thread::spawn(move || {
        let mut requests = handle.join().expect("server thread");
        requests.pop().expect("one request")
    });
    (url, handle)
}

/// Serves one request per `(status, body)` pair, in order; the handle
/// yields each request's head (lowercased) and body.
pub fn serve_sequence(answers: &[(&str, &str)]) -> (String, JoinHandle<Vec<(String, String)>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let responses: Vec<String> = answers
        .iter()
        .map(|(status, body)| {
            format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            )
        })
        .collect();
    let handle = std::thread::spawn(move || {
        responses
            .iter()
            .map(|response| {
                let (stream, _) = listener.accept().expect("accepting");
                answer(stream, response)
            })
            .collect()
    });
    (url, handle)
}

/// Reads one request from `stream` and writes `response`.
fn answer(stream: TcpStream, response: &str) -> (String, String) {
    let mut reader = BufReader::new(stream);
    let mut head = String::new();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("reading the head");
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().expect("length");
        }
        if line == "\r\n" || line.is_empty() {
            break;
        }
        head.push_str(&lower);
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).expect("reading the body");
    let mut stream = reader.into_inner();
    stream.write_all(response.as_bytes()).expect("answering");
    (head, String::from_utf8_lossy(&body).into_owned())
}
