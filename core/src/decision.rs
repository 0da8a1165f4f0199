//! Turning a required level and an authentication outcome into an answer (docs/reference/forward-auth.md §5).

use crate::identity::AuthLevel;

/// What an access rule demands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RequiredLevel {
    /// Anyone may pass, authenticated or not.
    Bypass,
    /// At least one factor.
    OneFactor,
    /// Two factors.
    TwoFactor,
    /// Nobody may pass.
    Deny,
}

/// The result of evaluating access rules: the level and whether the deciding rule had subject criteria.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Requirement {
    /// Level the matched rule (or the default policy) requires.
    pub level: RequiredLevel,
    /// True when the deciding rule has `subject` criteria (or `{user}`/`{group}` forms); a deny on such a
    /// rule sends an anonymous user to log in instead of answering 403.
    pub rule_has_subject: bool,
}

impl Requirement {
    /// A requirement from a rule without subject criteria.
    pub fn plain(level: RequiredLevel) -> Self {
        Self {
            level,
            rule_has_subject: false,
        }
    }
}

/// How authentication of this request went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthOutcome {
    /// Level reached (none when anonymous or failed).
    pub level: AuthLevel,
    /// An explicit failure happened (malformed header, bad credentials, ban, backend error).
    pub failed: bool,
    /// The deciding strategy reads a header (Basic/Bearer): unauthorized answers are its challenge, not a
    /// redirect to the portal.
    pub header_strategy: bool,
}

impl AuthOutcome {
    /// An anonymous request whose deciding strategy is the session cookie.
    pub fn anonymous() -> Self {
        Self {
            level: AuthLevel::None,
            failed: false,
            header_strategy: false,
        }
    }

    /// A successful authentication at `level`.
    pub fn authenticated(level: AuthLevel, header_strategy: bool) -> Self {
        Self {
            level,
            failed: false,
            header_strategy,
        }
    }

    /// An explicit failure of a header strategy.
    pub fn failed_header() -> Self {
        Self {
            level: AuthLevel::None,
            failed: true,
            header_strategy: true,
        }
    }
}

/// The answer to a forward-auth check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Decision {
    /// Let the request through (200 with identity headers).
    Allow,
    /// Send the browser to the login portal (302/303, or 401 with `Location` for XHR and nginx).
    Redirect,
    /// Answer the deciding header strategy's challenge (401 + `WWW-Authenticate`, or 407).
    Unauthorized,
    /// 403: authenticated (or the rule has no subject) and still not allowed.
    Forbidden,
}

/// Decide with the exact order of docs/reference/forward-auth.md §5.
///
/// ```
/// use portcullis_core::{decide, AuthLevel, AuthOutcome, Decision, Requirement, RequiredLevel};
/// let two_factor = Requirement::plain(RequiredLevel::TwoFactor);
/// // Basic (a header strategy) gives one factor: the answer is its challenge, not a redirect.
/// let basic = AuthOutcome::authenticated(AuthLevel::OneFactor, true);
/// assert_eq!(decide(two_factor, basic), Decision::Unauthorized);
/// ```
pub fn decide(required: Requirement, outcome: AuthOutcome) -> Decision {
    let login = if outcome.header_strategy {
        Decision::Unauthorized
    } else {
        Decision::Redirect
    };
    match required.level {
        RequiredLevel::Bypass => Decision::Allow,
        _ if outcome.failed => Decision::Unauthorized,
        RequiredLevel::Deny => {
            if outcome.level > AuthLevel::None || !required.rule_has_subject {
                Decision::Forbidden
            } else {
                login
            }
        }
        RequiredLevel::OneFactor if outcome.level >= AuthLevel::OneFactor => Decision::Allow,
        RequiredLevel::TwoFactor if outcome.level == AuthLevel::TwoFactor => Decision::Allow,
        RequiredLevel::OneFactor | RequiredLevel::TwoFactor => login,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AuthLevel::{None as L0, OneFactor as L1, TwoFactor as L2};
    use Decision::*;
    use RequiredLevel::*;

    fn req(level: RequiredLevel, subject: bool) -> Requirement {
        Requirement {
            level,
            rule_has_subject: subject,
        }
    }

    fn cookie(level: AuthLevel) -> AuthOutcome {
        AuthOutcome::authenticated(level, false)
    }

    #[test]
    fn decision_table_of_the_spec() {
        let cases = [
            // bypass always allows, even after an explicit failure
            (req(Bypass, false), cookie(L0), Allow),
            (req(Bypass, false), AuthOutcome::failed_header(), Allow),
            // an explicit failure is the challenge, never 403 or a redirect
            (req(Deny, false), AuthOutcome::failed_header(), Unauthorized),
            (
                req(OneFactor, false),
                AuthOutcome::failed_header(),
                Unauthorized,
            ),
            // deny: authenticated or rule without subject -> 403
            (req(Deny, false), cookie(L0), Forbidden),
            (req(Deny, false), cookie(L2), Forbidden),
            (req(Deny, true), cookie(L1), Forbidden),
            // deny with subject, anonymous -> login
            (req(Deny, true), cookie(L0), Redirect),
            (req(Deny, true), AuthOutcome::anonymous(), Redirect),
            // levels
            (req(OneFactor, false), cookie(L1), Allow),
            (req(OneFactor, false), cookie(L2), Allow),
            (req(OneFactor, false), cookie(L0), Redirect),
            (req(TwoFactor, false), cookie(L2), Allow),
            (req(TwoFactor, false), cookie(L1), Redirect),
            // header strategy too weak -> challenge, not redirect
            (
                req(TwoFactor, false),
                AuthOutcome::authenticated(L1, true),
                Unauthorized,
            ),
            (
                req(OneFactor, false),
                AuthOutcome {
                    level: L0,
                    failed: false,
                    header_strategy: true,
                },
                Unauthorized,
            ),
        ];
        for (required, outcome, expected) in cases {
            assert_eq!(
                decide(required, outcome),
                expected,
                "{required:?} {outcome:?}"
            );
        }
    }
}
