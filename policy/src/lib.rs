//! `portcullis-policy`: may this identity reach this target?
//!
//! A pure crate (no I/O, no clock, no global state) with two rule systems:
//!
//! - **Authelia access control** ([`AccessControlConfig`] → [`Policy`]): the `access_control` section
//!   of an Authelia `configuration.yml`, validated and compiled once by [`Policy::compile`], then
//!   evaluated per request by [`Policy::evaluate`] (and explained rule by rule by
//!   [`Policy::explain`]).
//! - **authentik unauthenticated paths** ([`SkipPaths`]): `skip_path_regex`, matched on the path or on
//!   the full URL.
//!
//! ```
//! use std::collections::BTreeMap;
//! use portcullis_core::{checked_method, AuthLevel, ClientIp, Identity, RequiredLevel, Target, TargetUrl};
//! use portcullis_policy::{AccessControlConfig, Policy, RuleConfig};
//!
//! let config = AccessControlConfig {
//!     default_policy: Some("deny".into()),
//!     rules: vec![
//!         RuleConfig {
//!             domain: vec!["app.example.com".into()],
//!             resources: vec!["^/public/".into()],
//!             policy: "bypass".into(),
//!             ..Default::default()
//!         },
//!         RuleConfig {
//!             domain: vec!["*.example.com".into()],
//!             subject: vec![vec!["group:admins".into()]],
//!             policy: "two_factor".into(),
//!             ..Default::default()
//!         },
//!     ],
//!     ..Default::default()
//! };
//! let policy = Policy::compile(&config, &BTreeMap::new()).unwrap();
//! let target = |url: &str| Target {
//!     url: TargetUrl::parse(url).unwrap(),
//!     method: checked_method("GET", "example").unwrap(),
//!     client_ip: ClientIp::Known("192.0.2.7".parse().unwrap()),
//! };
//! let anonymous = Identity::anonymous();
//!
//! let public = policy.evaluate(&target("https://App.Example.com/public/logo.png"), &anonymous);
//! assert_eq!(public.requirement.level, RequiredLevel::Bypass);
//!
//! // An encoded dot segment does not escape the bypass: it is the admin rule, and anonymous users
//! // are sent to log in (a potential match, docs/reference/forward-auth.md §10.3).
//! let sneaky = policy.evaluate(&target("https://app.example.com/public/%2e%2e/admin"), &anonymous);
//! assert_eq!((sneaky.rule, sneaky.requirement.level), (Some(1), RequiredLevel::TwoFactor));
//! assert!(sneaky.requirement.rule_has_subject);
//!
//! // After login, a user outside the group falls through to the default policy.
//! let bob = Identity::user("bob", AuthLevel::TwoFactor).with_groups(["users"]);
//! let after = policy.evaluate(&target("https://app.example.com/admin"), &bob);
//! assert_eq!((after.rule, after.requirement.level), (None, RequiredLevel::Deny));
//! ```
//!
//! # Evaluation (docs/reference/forward-auth.md §10)
//!
//! Rules are checked in order and the first whose criteria all match decides; otherwise the default
//! policy does, with `rule_has_subject = false`. Criteria are checked in Authelia's order — domain
//! (`domain` ORed with `domain_regex`), `resources`, `query`, `methods`, `networks`, `subject` — and
//! [`Criterion`] names the first that fails in an [`Explanation`].
//!
//! - **Hosts** compare case-insensitively on the canonical host. `*.example.com` needs at least one
//!   more label (not `example.com`, not `evil-example.com`); `{user}.example.com` is the user's name
//!   as first label(s); `{group}.example.com` has one of the user's groups as first label.
//! - **`resources`** (RE2, unanchored, case-sensitive) see the canonical path of [`path`], then `?` and
//!   the raw query when the query is non-empty. So an unanchored pattern can match text in the query:
//!   that is the reference behaviour, and [`Policy::warnings`] flags such a pattern on a `bypass`
//!   rule.
//! - **`query`** items test the first value of a key, decoded with form rules and Go's
//!   `url.ParseQuery` quirks (a pair containing `;` is ignored).
//! - **`networks`** test the client IP; an unknown client IP ([`portcullis_core::ClientIp::Unknown`])
//!   matches no network.
//! - **`subject`**: OR of AND groups of `user:` (exact), `group:` (exact, case-sensitive) and
//!   `oauth2:client:` (the identity's client id).
//! - **Anonymous requesters** ([`portcullis_core::Identity::is_anonymous`]) match `subject` criteria,
//!   `{user}`/`{group}` domains (any longer host under the suffix) and `User`/`Group` named groups
//!   (any regex match): evaluation stops at the first rule that could match once they log in, with
//!   `rule_has_subject = true`. After login, failing a rule's subjects falls through to later rules.
//! - **`User`/`Group` named groups** in `domain_regex` and `resources`: some match must capture the
//!   username (case-insensitively) and/or one of the user's groups (case-insensitively).
//!
//! Regular expressions are Go RE2: `\d`, `\w`, `\s` and `\b` keep their ASCII meaning (they are
//! rewritten before compiling with the Rust `regex` crate), and an invalid pattern is a configuration
//! error, never "no match".
//!
//! # Monotonicity (docs/reference/security.md R4.2)
//!
//! The decision is made on the canonical path, and also on the other readings a backend might make
//! of the same request: with `;parameters` removed from every segment, cut at a decoded `#` or `?`,
//! and with `\` read as `/` (every combination). The strictest answer wins
//! (deny > two_factor > one_factor > bypass; between two denies, the one without subject). So
//! `/admin;x`, `/public/..;/admin`, `/admin%23`, `/admin%3F…` or `/public/..%5cadmin` cannot be more
//! permissive than `/admin`. Encoded dot segments and slashes, repeated slashes and `#` fragments are
//! handled by the canonical path itself.
//!
//! **A path that cannot be normalised** (a bad escape, invalid UTF-8, or a control character such as
//! `%00` after decoding) leaves `resources` undetermined. Every rule that might then be the first
//! match is a candidate (the scan stops at the first rule that matches whatever the path is, or at the
//! default), and the strictest candidate decides. It is never a bypass: if every candidate bypasses,
//! the answer is deny without subject (403), [`DecidedBy::FailClosed`] in an explanation.

#![warn(missing_docs, unreachable_pub)]

pub mod config;
pub mod error;
pub mod explain;
pub mod path;
mod policy;
mod query;
mod re2;
pub mod skip;

pub use config::{AccessControlConfig, NetworkDefinition, QueryItemConfig, RuleConfig};
pub use error::PolicyError;
pub use explain::{Criterion, DecidedBy, Evaluation, Explanation, RuleTrace, policy_name};
pub use path::{PathError, canonical_path};
pub use policy::Policy;
pub use skip::SkipPaths;

#[cfg(test)]
mod tests;
