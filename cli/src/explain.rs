//! `explain` / `access-control check-policy`: the policy's rule-by-rule account of one request, and
//! the answer for one identity.

use portcullis_core::{
    AuthLevel, AuthOutcome, ClientIp, Decision, Identity, Target, TargetUrl, checked_method, decide,
};
use portcullis_policy::{DecidedBy, Explanation};
use serde::Serialize;

use crate::{CliError, ExplainArgs, Format, Io, Level, load_config};

/// Where the identity's groups came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum GroupsFrom {
    /// `--groups`.
    Flag,
    /// The users file, for `--username`.
    UsersFile,
    /// The users' directory, for `--username`.
    Directory,
    /// Nowhere: anonymous, or a user the users file or directory does not know.
    None,
}

#[derive(Debug, Serialize)]
struct RequestReport<'a> {
    url: &'a str,
    method: &'a str,
    client_ip: Option<String>,
}

#[derive(Debug, Serialize)]
struct IdentityReport<'a> {
    username: Option<&'a str>,
    groups: &'a [String],
    groups_from: GroupsFrom,
    level: &'static str,
}

/// The JSON document of `--format json`.
#[derive(Debug, Serialize)]
struct Report<'a> {
    request: RequestReport<'a>,
    identity: IdentityReport<'a>,
    #[serde(flatten)]
    explanation: &'a Explanation,
    /// The deciding rule's index, `null` for the default policy.
    rule: Option<usize>,
    decision: &'static str,
}

fn level_name(level: AuthLevel) -> &'static str {
    match level {
        AuthLevel::OneFactor => "1fa",
        AuthLevel::TwoFactor => "2fa",
        _ => "none",
    }
}

/// The answer in words (text) and as a token (JSON).
fn decision_names(decision: Decision) -> (&'static str, &'static str) {
    match decision {
        Decision::Allow => ("allow", "allow"),
        Decision::Redirect => ("redirect to login", "redirect_to_login"),
        Decision::Forbidden => ("forbidden (403)", "forbidden"),
        _ => ("unauthorized (401)", "unauthorized"),
    }
}

/// `portcullis explain`.
pub(crate) fn explain(args: &ExplainArgs, io: &mut Io<'_>) -> Result<u8, CliError> {
    let (config, _warnings) = load_config(&args.config)?;

    let url = TargetUrl::parse(&args.url)
        .map_err(|e| CliError::invalid(format!("--url {}: {e}", args.url)))?;
    let method_text = args.method.to_ascii_uppercase();
    let method = checked_method(&method_text, "--method")
        .map_err(|_| CliError::invalid(format!("--method {}: not a method", args.method)))?;
    let client_ip = args
        .ip
        .map_or(ClientIp::Unknown, |ip| ClientIp::Known(ip.to_canonical()));
    let target = Target {
        url,
        method,
        client_ip,
    };

    let claims_identity = args.username.is_some() || args.groups.is_some();
    let level = match args.level {
        Some(Level::None) if claims_identity => {
            return Err(CliError::invalid(
                "--level none describes an anonymous request: drop --username and --groups",
            ));
        }
        Some(Level::None) => AuthLevel::None,
        Some(Level::OneFactor) => AuthLevel::OneFactor,
        Some(Level::TwoFactor) => AuthLevel::TwoFactor,
        None if claims_identity => AuthLevel::OneFactor,
        None => AuthLevel::None,
    };
    let mut username = args.username.clone();
    let (groups, groups_from) = match (&args.groups, &args.username) {
        (Some(groups), _) => (groups.clone(), GroupsFrom::Flag),
        (None, Some(login)) => {
            match crate::users::find(&config, login, portcullis_server_core::clock::unix_now())? {
                Some(user) => {
                    // As the server would: the canonical name, whatever was typed.
                    username = Some(user.username.clone());
                    let from = if config.users.file().is_some() {
                        GroupsFrom::UsersFile
                    } else {
                        GroupsFrom::Directory
                    };
                    (user.groups.clone(), from)
                }
                None => (Vec::new(), GroupsFrom::None),
            }
        }
        (None, None) => (Vec::new(), GroupsFrom::None),
    };
    let identity = if level == AuthLevel::None {
        Identity::anonymous()
    } else {
        Identity::user(username.clone().unwrap_or_default(), level).with_groups(groups.clone())
    };

    let explanation = config.policy.explain(&target, &identity);
    let outcome = if identity.is_anonymous() {
        AuthOutcome::anonymous()
    } else {
        AuthOutcome::authenticated(level, false)
    };
    let decision = decide(explanation.evaluation.requirement, outcome);
    let (words, token) = decision_names(decision);
    let rule = match explanation.decided_by {
        DecidedBy::Rule(index) => Some(index),
        _ => None,
    };

    match args.format {
        Format::Json => {
            let report = Report {
                request: RequestReport {
                    url: &args.url,
                    method: &method_text,
                    client_ip: client_ip.addr().map(|ip| ip.to_string()),
                },
                identity: IdentityReport {
                    username: username.as_deref().filter(|_| level != AuthLevel::None),
                    groups: &identity.groups,
                    groups_from,
                    level: level_name(level),
                },
                explanation: &explanation,
                rule,
                decision: token,
            };
            let json = serde_json::to_string_pretty(&report)
                .map_err(|e| CliError::failed(format!("cannot encode the report: {e}")))?;
            writeln!(io.out, "{json}")?;
        }
        Format::Text => {
            let ip = client_ip
                .addr()
                .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
            writeln!(
                io.out,
                "request: {method_text} {} (client IP {ip})",
                args.url
            )?;
            let who = describe_identity(&identity, username.as_deref(), groups_from);
            writeln!(io.out, "identity: {who}")?;
            writeln!(io.out, "{explanation}")?;
            writeln!(io.out, "answer: {words}")?;
        }
    }
    Ok(0)
}

fn describe_identity(identity: &Identity, username: Option<&str>, from: GroupsFrom) -> String {
    if identity.is_anonymous() {
        return "anonymous".to_owned();
    }
    let name = username
        .filter(|u| !u.is_empty())
        .unwrap_or("(no username)");
    let groups = if identity.groups.is_empty() {
        "no groups".to_owned()
    } else {
        format!("groups {}", identity.groups.join(", "))
    };
    let source = match from {
        GroupsFrom::UsersFile => " (from the users file)",
        GroupsFrom::Directory => " (from the directory)",
        GroupsFrom::None if username.is_some() => " (not a known user)",
        _ => "",
    };
    let level = match identity.level {
        AuthLevel::TwoFactor => "two factors",
        _ => "one factor",
    };
    format!("{name}, {groups}{source}, logged in with {level}")
}
