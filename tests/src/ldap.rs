//! A real OpenLDAP for the tests (docs/reference/ldap.md §5.5): `slapd` from Debian, configured
//! by a `slapd.conf` written here, on free loopback ports for `ldap://` and `ldaps://` (the
//! per-run certificate, which names `*.example.com`), with the memberOf overlay and Authelia's
//! access rules; users loaded offline with `slapadd`, groups added online so that memberOf is
//! filled. A small schema (`FREEIPA_SCHEMA`) gives the attributes FreeIPA's users filter reads,
//! so that locked and expired accounts can be told apart as `implementation: freeipa` does.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::process::{Process, find_program, free_port};
use crate::tls;

/// The suffix.
pub const BASE_DN: &str = "dc=example,dc=com";
/// The password manager account (Authelia's fixture: it may read everything and write
/// passwords).
pub const SERVICE_DN: &str = "cn=pwmanager,dc=example,dc=com";
/// Its password (the one Authelia's LDAP suite configuration gives it).
pub const SERVICE_PASSWORD: &str = "password";
/// john's DN (a DN that needs escaping in a filter).
pub const JOHN_DN: &str = "cn=John Doe (external),ou=users,dc=example,dc=com";
/// The users' password.
pub const PASSWORD: &str = "password";

/// FreeIPA's account attributes (`nsAccountLock`, `krbPasswordExpiration`,
/// `krbPrincipalExpiration`) under a private test arc, on an auxiliary class.
const FREEIPA_SCHEMA: &str = "attributetype ( 1.3.6.1.4.1.55555.1.1 NAME 'nsAccountLock' EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.55555.1.2 NAME 'krbPasswordExpiration' EQUALITY generalizedTimeMatch ORDERING generalizedTimeOrderingMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.24 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.55555.1.3 NAME 'krbPrincipalExpiration' EQUALITY generalizedTimeMatch ORDERING generalizedTimeOrderingMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.24 SINGLE-VALUE )
objectclass ( 1.3.6.1.4.1.55555.2.1 NAME 'portcullisIpaAccount' AUXILIARY MAY ( nsAccountLock $ krbPasswordExpiration $ krbPrincipalExpiration ) )
";

/// The FreeIPA-style users: `(uid, what their entry says)`. Only `ipa-active` may log in under
/// FreeIPA's filter.
pub const IPA_USERS: [(&str, &str); 4] = [
    ("ipa-active", "krbPasswordExpiration: 20990101000000Z\n"),
    (
        "ipa-locked",
        "krbPasswordExpiration: 20990101000000Z\nnsAccountLock: TRUE\n",
    ),
    (
        "ipa-password-expired",
        "krbPasswordExpiration: 20200101000000Z\n",
    ),
    (
        "ipa-principal-expired",
        "krbPasswordExpiration: 20990101000000Z\nkrbPrincipalExpiration: 20200101000000Z\n",
    ),
];

/// Programs the LDAP tests need.
pub const PROGRAMS: &[&str] = &[
    "slapd",
    "slappasswd",
    "slapadd",
    "slaptest",
    "ldapadd",
    "ldapmodify",
];

/// A running slapd.
pub struct Slapd {
    process: Option<Process>,
    /// `ldap://` port.
    pub port: u16,
    /// `ldaps://` port.
    pub tls_port: u16,
    dir: PathBuf,
    config: PathBuf,
    /// The CA that signed the server's certificate.
    pub ca: PathBuf,
}

fn run(program: &str, args: &[&str], input: Option<&str>) -> String {
    use std::io::Write;
    let mut command = Command::new(find_program(program).unwrap_or_else(|| panic!("{program}")));
    command
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = command.spawn().unwrap_or_else(|e| panic!("{program}: {e}"));
    if let Some(text) = input {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .expect("write stdin");
    }
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn ssha(password: &str) -> String {
    run("slappasswd", &["-s", password], None).trim().to_owned()
}

/// The users: john (groups admins and dev), harry (dev), bob (no group), two entries with
/// `uid: dup`, and a disabled-looking entry outside `ou=users`.
fn base_ldif() -> String {
    let pw = ssha(PASSWORD);
    let service = ssha(SERVICE_PASSWORD);
    format!(
        "dn: {BASE_DN}\nobjectClass: top\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n\n\
dn: ou=users,{BASE_DN}\nobjectClass: organizationalUnit\nou: users\n\n\
dn: ou=groups,{BASE_DN}\nobjectClass: organizationalUnit\nou: groups\n\n\
dn: {SERVICE_DN}\nobjectClass: simpleSecurityObject\nobjectClass: organizationalRole\ncn: pwmanager\nuserPassword: {service}\n\n\
dn: {JOHN_DN}\nobjectClass: inetOrgPerson\ncn: John Doe (external)\nsn: Doe\nuid: john\nmail: john.doe@authelia.com\ndisplayName: John Doe\nuserPassword: {pw}\n\n\
dn: cn=Harry Potter,ou=users,{BASE_DN}\nobjectClass: inetOrgPerson\ncn: Harry Potter\nsn: Potter\nuid: harry\nmail: harry.potter@authelia.com\ndisplayName: Harry Potter\nuserPassword: {pw}\n\n\
dn: cn=Bob Dylan,ou=users,{BASE_DN}\nobjectClass: inetOrgPerson\ncn: Bob Dylan\nsn: Dylan\nuid: bob\nmail: bob.dylan@authelia.com\nuserPassword: {pw}\n\n\
dn: cn=Dup One,ou=users,{BASE_DN}\nobjectClass: inetOrgPerson\ncn: Dup One\nsn: One\nuid: dup\nmail: dup1@authelia.com\nuserPassword: {pw}\n\n\
dn: cn=Dup Two,ou=users,{BASE_DN}\nobjectClass: inetOrgPerson\ncn: Dup Two\nsn: Two\nuid: dup\nmail: dup2@authelia.com\nuserPassword: {pw}\n\n{ipa}"
    ,
        ipa = IPA_USERS
            .iter()
            .map(|(uid, extra)| format!("dn: uid={uid},ou=users,{BASE_DN}\nobjectClass: inetOrgPerson\nobjectClass: portcullisIpaAccount\ncn: {uid}\nsn: {uid}\nuid: {uid}\nmail: {uid}@authelia.com\nuserPassword: {pw}\n{extra}\n"))
            .collect::<String>()
    )
}

fn groups_ldif() -> String {
    format!(
        "dn: cn=admins,ou=groups,{BASE_DN}\nobjectClass: groupOfNames\ncn: admins\nmember: {JOHN_DN}\n\n\
dn: cn=dev,ou=groups,{BASE_DN}\nobjectClass: groupOfNames\ncn: dev\nmember: {JOHN_DN}\nmember: cn=Harry Potter,ou=users,{BASE_DN}\n\n"
    )
}

impl Slapd {
    /// Configure, load and start slapd in `dir`.
    pub fn start(dir: &Path) -> Self {
        let dir = dir.join("slapd");
        let data = dir.join("data");
        std::fs::create_dir_all(&data).expect("slapd folder");
        let certs = tls::write(&dir);
        let config = dir.join("slapd.conf");
        let schema = dir.join("freeipa.schema");
        std::fs::write(&schema, FREEIPA_SCHEMA).expect("freeipa.schema");
        std::fs::write(
            &config,
            format!(
                "include /etc/ldap/schema/core.schema\n\
include /etc/ldap/schema/cosine.schema\n\
include /etc/ldap/schema/inetorgperson.schema\n\
include /etc/ldap/schema/nis.schema\n\
include {schema}\n\
pidfile {dir}/slapd.pid\n\
modulepath /usr/lib/ldap\n\
moduleload back_mdb\n\
moduleload memberof\n\
password-hash {{SSHA}}\n\
TLSCertificateFile {chain}\n\
TLSCertificateKeyFile {key}\n\
database mdb\n\
maxsize 104857600\n\
suffix \"{BASE_DN}\"\n\
rootdn \"cn=admin,{BASE_DN}\"\n\
rootpw {root}\n\
directory {data}\n\
overlay memberof\n\
memberof-group-oc groupOfNames\n\
memberof-member-ad member\n\
memberof-memberof-ad memberOf\n\
memberof-refint TRUE\n\
access to attrs=userPassword by self write by dn.exact=\"{SERVICE_DN}\" write by anonymous auth by * none\n\
access to * by self read by dn.exact=\"{SERVICE_DN}\" read by * none\n",
                dir = dir.display(),
                schema = schema.display(),
                chain = certs.chain.display(),
                key = certs.key.display(),
                data = data.display(),
                root = ssha("adminpass"),
            ),
        )
        .expect("slapd.conf");
        let config_text = config.display().to_string();
        run("slaptest", &["-f", &config_text, "-u"], None);
        let ldif = dir.join("base.ldif");
        std::fs::write(&ldif, base_ldif()).expect("base.ldif");
        run(
            "slapadd",
            &["-f", &config_text, "-l", &ldif.display().to_string()],
            None,
        );
        let mut slapd = Self {
            process: None,
            port: free_port(),
            tls_port: free_port(),
            dir,
            config,
            ca: certs.ca,
        };
        slapd.restart();
        slapd.ldapadd(&groups_ldif());
        slapd
    }

    /// Start (again) on the same ports and data.
    pub fn restart(&mut self) {
        let mut command = Command::new(find_program("slapd").expect("slapd"));
        command.arg("-f").arg(&self.config).args([
            "-h",
            &format!(
                "ldap://127.0.0.1:{}/ ldaps://127.0.0.1:{}/ {}",
                self.port,
                self.tls_port,
                self.ldapi_url()
            ),
            "-d",
            "0",
        ]);
        self.process = Some(Process::spawn("slapd", command, &self.dir, false));
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(p) = self.process.as_mut() {
                p.assert_running();
            }
            assert!(Instant::now() < deadline, "slapd did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The `ldapi://` URL of its Unix socket (the path percent-encoded in the host's place).
    pub fn ldapi_url(&self) -> String {
        format!(
            "ldapi://{}",
            self.dir
                .join("ldapi")
                .display()
                .to_string()
                .replace('/', "%2F")
        )
    }

    /// Kill it (the data stays).
    pub fn kill(&mut self) {
        self.process = None;
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            assert!(Instant::now() < deadline, "slapd did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Freeze it (SIGSTOP): connections are accepted by the kernel but never answered.
    pub fn freeze(&self, frozen: bool) {
        let pid = self.process.as_ref().expect("running").id().to_string();
        let signal = if frozen { "-STOP" } else { "-CONT" };
        let _ = Command::new("kill").args([signal, &pid]).status();
    }

    fn admin(&self, program: &str, ldif: &str) -> String {
        self.admin_with(program, &[], ldif)
    }

    fn admin_with(&self, program: &str, options: &[&str], ldif: &str) -> String {
        let url = format!("ldap://127.0.0.1:{}", self.port);
        let admin = format!("cn=admin,{BASE_DN}");
        let mut args = options.to_vec();
        args.extend(["-x", "-H", &url, "-D", &admin, "-w", "adminpass"]);
        run(program, &args, Some(ldif))
    }

    /// Add entries with the ManageDsaIT control, so that `referral` objects are stored as
    /// entries instead of followed.
    pub fn ldapadd_referrals(&self, ldif: &str) {
        self.admin_with("ldapadd", &["-M"], ldif);
    }

    /// Add entries as the directory's administrator.
    pub fn ldapadd(&self, ldif: &str) {
        self.admin("ldapadd", ldif);
    }

    /// `authentication_backend.ldap`'s keys for this directory, indented by four: plain
    /// `ldap://`, Authelia's LDAP suite filters, the password manager as the service account,
    /// a 2-second timeout.
    pub fn verify_keys(&self) -> String {
        format!(
            "    address: 'ldap://127.0.0.1:{port}'\n    implementation: custom\n    timeout: 2s\n    base_dn: '{BASE_DN}'\n    additional_users_dn: 'ou=users'\n    users_filter: '(&(|({{username_attribute}}={{input}})({{mail_attribute}}={{input}}))(objectClass=person)(objectClass=inetOrgPerson))'\n    additional_groups_dn: 'ou=groups'\n    groups_filter: '(&(member={{dn}})(objectClass=groupOfNames))'\n    user: '{SERVICE_DN}'\n    password: '{SERVICE_PASSWORD}'\n    attributes:\n      username: uid\n      display_name: displayName\n      mail: mail\n      member_of: memberOf\n      group_name: cn\n",
            port = self.port
        )
    }

    /// Modify entries as the directory's administrator.
    pub fn ldapmodify(&self, ldif: &str) {
        self.admin("ldapmodify", ldif);
    }
}
