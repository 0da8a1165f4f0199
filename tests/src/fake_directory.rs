//! An in-process LDAP server for the one thing slapd cannot show: what a client sends to an
//! Active Directory (the `unicodePwd` value, the password policy hints control) or to a
//! directory without the Password Modify operation. It accepts every bind, answers a root DSE
//! that advertises the controls and extensions it is given, records every modify request with
//! its controls and answers it with success, and refuses every other operation (result 53).
//! Messages are read with `ldap3`'s BER parser; answers are written byte by byte (RFC 4511).

use std::sync::{Arc, Mutex};

use ldap3::asn1::{PL, StructureTag, parse_tag};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A control as the client sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentControl {
    /// The OID.
    pub oid: String,
    /// The criticality.
    pub critical: bool,
    /// The value's bytes, if any.
    pub value: Option<Vec<u8>>,
}

/// One change of a modify request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentChange {
    /// 0 add, 1 delete, 2 replace.
    pub operation: u8,
    /// The attribute's name.
    pub attribute: String,
    /// The values' bytes.
    pub values: Vec<Vec<u8>>,
}

/// A modify request as the client sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentModify {
    /// The entry's DN.
    pub dn: String,
    /// The changes.
    pub changes: Vec<SentChange>,
    /// The controls that came with it.
    pub controls: Vec<SentControl>,
}

/// The running fake.
pub struct FakeDirectory {
    /// Its `ldap://127.0.0.1:port` address.
    pub url: String,
    modifies: Arc<Mutex<Vec<SentModify>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeDirectory {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeDirectory {
    /// Listen on a free loopback port; the root DSE lists `controls` as `supportedControl` and
    /// `extensions` as `supportedExtension`.
    pub async fn start(controls: &[&str], extensions: &[&str]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("ldap://{}", listener.local_addr().expect("address"));
        let modifies = Arc::new(Mutex::new(Vec::new()));
        let root = root_dse(controls, extensions);
        let recorded = modifies.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, root.clone(), recorded.clone()));
            }
        });
        Self {
            url,
            modifies,
            task,
        }
    }

    /// The modify requests received so far.
    pub fn modifies(&self) -> Vec<SentModify> {
        self.modifies.lock().expect("modifies").clone()
    }
}

async fn serve(mut stream: TcpStream, root: Vec<u8>, modifies: Arc<Mutex<Vec<SentModify>>>) {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let message = loop {
            if let Ok((rest, tag)) = parse_tag(&buffer) {
                let used = buffer.len() - rest.len();
                buffer.drain(..used);
                break tag;
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        };
        let PL::C(parts) = message.payload else {
            return;
        };
        let (Some(id), Some(operation)) = (parts.first(), parts.get(1)) else {
            return;
        };
        let id = integer(id);
        let controls = parts.get(2).map(controls).unwrap_or_default();
        let answer = match operation.id {
            // Bind: every one succeeds.
            0 => message_bytes(id, &result(1, 0)),
            // Unbind.
            2 => return,
            // Search: the root DSE, whatever was asked.
            3 => {
                let mut both = message_bytes(id, &root);
                both.extend(message_bytes(id, &result(5, 0)));
                both
            }
            6 => {
                modifies
                    .lock()
                    .expect("modifies")
                    .push(modify(operation, controls));
                message_bytes(id, &result(7, 0))
            }
            // Anything else (an extended operation included) is refused: unwilling to perform.
            other => message_bytes(id, &result(response_of(other), 53)),
        };
        if stream.write_all(&answer).await.is_err() {
            return;
        }
    }
}

/// The response's application tag for a request's.
fn response_of(request: u64) -> u8 {
    match request {
        23 => 24,
        8 => 9,
        10 => 11,
        12 => 13,
        14 => 15,
        _ => 7,
    }
}

fn primitive(tag: &StructureTag) -> Vec<u8> {
    match &tag.payload {
        PL::P(bytes) => bytes.clone(),
        PL::C(_) => Vec::new(),
    }
}

fn children(tag: &StructureTag) -> &[StructureTag] {
    match &tag.payload {
        PL::C(parts) => parts,
        PL::P(_) => &[],
    }
}

fn text(tag: &StructureTag) -> String {
    String::from_utf8_lossy(&primitive(tag)).into_owned()
}

fn integer(tag: &StructureTag) -> u64 {
    primitive(tag)
        .iter()
        .fold(0, |n, b| (n << 8) | u64::from(*b))
}

fn controls(tag: &StructureTag) -> Vec<SentControl> {
    children(tag)
        .iter()
        .map(|control| {
            let parts = children(control);
            let mut control = SentControl {
                oid: parts.first().map(text).unwrap_or_default(),
                critical: false,
                value: None,
            };
            for part in parts.iter().skip(1) {
                match part.id {
                    1 => control.critical = primitive(part).first().is_some_and(|b| *b != 0),
                    _ => control.value = Some(primitive(part)),
                }
            }
            control
        })
        .collect()
}

fn modify(operation: &StructureTag, controls: Vec<SentControl>) -> SentModify {
    let parts = children(operation);
    let changes = parts
        .get(1)
        .map(children)
        .unwrap_or_default()
        .iter()
        .map(|change| {
            let change = children(change);
            let attribute = change.get(1).map(children).unwrap_or_default();
            SentChange {
                operation: change
                    .first()
                    .map(|o| u8::try_from(integer(o)).unwrap_or(u8::MAX))
                    .unwrap_or(u8::MAX),
                attribute: attribute.first().map(text).unwrap_or_default(),
                values: attribute
                    .get(1)
                    .map(children)
                    .unwrap_or_default()
                    .iter()
                    .map(primitive)
                    .collect(),
            }
        })
        .collect();
    SentModify {
        dn: parts.first().map(text).unwrap_or_default(),
        changes,
        controls,
    }
}

/// A BER element: `tag`, definite length, `content`.
fn element(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let length = content.len();
    if length < 0x80 {
        out.push(u8::try_from(length).expect("short length"));
    } else {
        let bytes: Vec<u8> = length
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | u8::try_from(bytes.len()).expect("length of length"));
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

fn octets(value: &[u8]) -> Vec<u8> {
    element(0x04, value)
}

/// `LDAPMessage ::= SEQUENCE { messageID, protocolOp }`.
fn message_bytes(id: u64, operation: &[u8]) -> Vec<u8> {
    let id_bytes: Vec<u8> = {
        let bytes: Vec<u8> = id
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        if bytes.is_empty() || bytes[0] & 0x80 != 0 {
            [vec![0], bytes].concat()
        } else {
            bytes
        }
    };
    let mut content = element(0x02, &id_bytes);
    content.extend_from_slice(operation);
    element(0x30, &content)
}

/// An `LDAPResult` under application tag `application` (constructed).
fn result(application: u8, code: u8) -> Vec<u8> {
    let mut content = element(0x0A, &[code]);
    content.extend(octets(b""));
    content.extend(octets(b""));
    element(0x60 | application, &content)
}

/// A `SearchResultEntry` for the root DSE.
fn root_dse(controls: &[&str], extensions: &[&str]) -> Vec<u8> {
    let attribute = |name: &str, values: &[&str]| {
        let set: Vec<u8> = values.iter().flat_map(|v| octets(v.as_bytes())).collect();
        let mut content = octets(name.as_bytes());
        content.extend(element(0x31, &set));
        element(0x30, &content)
    };
    let mut attributes = attribute("supportedControl", controls);
    attributes.extend(attribute("supportedExtension", extensions));
    let mut content = octets(b"");
    content.extend(element(0x30, &attributes));
    element(0x64, &content)
}
