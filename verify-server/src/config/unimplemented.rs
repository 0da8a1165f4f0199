//! The Authelia keys Portcullis reads but does not act on: each gives one warning (saying so when
//! ignoring it weakens security) instead of an unknown-key error.

use super::raw;
use super::validate::Validator;

const NOT_IMPLEMENTED: &str = "not implemented by Portcullis; ignored";

impl Validator<'_> {
    pub(super) fn ignored<T>(&mut self, key: &str, value: &Option<T>, note: &str) {
        if value.is_some() {
            let message = if note.is_empty() {
                NOT_IMPLEMENTED.to_owned()
            } else {
                format!("{NOT_IMPLEMENTED}: {note}")
            };
            self.warn(key, message);
        }
    }

    pub(super) fn warn_unimplemented(&mut self, raw: &raw::RawConfig) {
        let top: [(&str, bool, &str); 6] = [
            ("theme", raw.theme.is_some(), ""),
            ("jwt_secret", raw.jwt_secret.is_some(), ""),
            (
                "default_redirection_url",
                raw.default_redirection_url.is_some(),
                "set session.cookies[].default_redirection_url instead",
            ),
            (
                "duo_api",
                raw.duo_api.is_some(),
                "Duo push is not offered as a second factor",
            ),
            (
                "ntp",
                raw.ntp.is_some(),
                "the clock is not checked against NTP",
            ),
            ("privacy_policy", raw.privacy_policy.is_some(), ""),
        ];
        for (key, present, note) in top {
            if present {
                self.ignored(key, &Some(()), note);
            }
        }
        let s = &raw.server;
        self.ignored(
            "server.path",
            &s.path,
            "serve Portcullis at the root of its host",
        );
        self.ignored("server.asset_path", &s.asset_path, "");
        self.ignored("server.disable_healthcheck", &s.disable_healthcheck, "");
        self.ignored(
            "server.buffers",
            &s.buffers,
            "Portcullis uses its own header limits (see README)",
        );
        self.ignored(
            "server.timeouts",
            &s.timeouts,
            "Portcullis uses its own timeouts (see README)",
        );
        self.ignored(
            "server.headers",
            &s.headers,
            "NOT ENFORCED: configure CSP on the proxy",
        );
        self.ignored(
            "server.tls.client_certificates",
            &s.tls.client_certificates,
            "NOT ENFORCED: client certificates are not verified",
        );
        self.ignored(
            "server.endpoints.enable_pprof",
            &s.endpoints.enable_pprof,
            "",
        );
        self.ignored(
            "server.endpoints.enable_expvars",
            &s.endpoints.enable_expvars,
            "",
        );
        if let Some(limits) = &s.endpoints.rate_limits {
            self.ignored(
                "server.endpoints.rate_limits.second_factor_duo",
                &limits.second_factor_duo,
                "the endpoint it limits does not exist in Portcullis yet",
            );
        }
        self.ignored(
            "log.file_path",
            &raw.log.file_path,
            "logs go to standard output",
        );
        self.ignored("log.keep_stdout", &raw.log.keep_stdout, "");
        let b = &raw.authentication_backend;
        if b.file.is_some() {
            self.ignored(
                "authentication_backend.ldap",
                &b.ldap,
                "the file backend is used",
            );
        }
        if let Some(f) = &b.file {
            self.ignored(
                "authentication_backend.file.password",
                &f.password,
                "digests of any supported family are verified as written",
            );
            self.ignored(
                "authentication_backend.file.extra_attributes",
                &f.extra_attributes,
                "the declarations are not checked: every `extra` attribute of the users file is read as written",
            );
        }
        if let Some(r) = &raw.session.redis {
            let note = "Portcullis multiplexes one connection per replica";
            self.ignored(
                "session.redis.maximum_active_connections",
                &r.maximum_active_connections,
                note,
            );
            self.ignored(
                "session.redis.minimum_idle_connections",
                &r.minimum_idle_connections,
                note,
            );
            if let Some(t) = &r.tls {
                self.ignored(
                    "session.redis.tls.server_name",
                    &t.server_name,
                    "the host name is verified",
                );
                self.ignored("session.redis.tls.minimum_version", &t.minimum_version, "");
                self.ignored("session.redis.tls.maximum_version", &t.maximum_version, "");
                self.ignored(
                    "session.redis.tls.certificate_chain",
                    &t.certificate_chain,
                    "NOT ENFORCED: no client certificate is sent",
                );
                self.ignored("session.redis.tls.private_key", &t.private_key, "");
            }
            if let Some(h) = &r.high_availability {
                self.ignored(
                    "session.redis.high_availability.route_by_latency",
                    &h.route_by_latency,
                    "the master is always used",
                );
                self.ignored(
                    "session.redis.high_availability.route_randomly",
                    &h.route_randomly,
                    "the master is always used",
                );
            }
        }
        self.ignored(
            "session.remember_me_duration",
            &raw.session.remember_me_duration,
            "use session.remember_me",
        );
        self.ignored("storage.mysql", &raw.storage.mysql, "storage.local is used");
        self.ignored(
            "storage.postgres",
            &raw.storage.postgres,
            "storage.local is used",
        );
        self.ignored(
            "telemetry.metrics.buffers",
            &raw.telemetry.metrics.buffers,
            "",
        );
        self.ignored(
            "telemetry.metrics.timeouts",
            &raw.telemetry.metrics.timeouts,
            "",
        );
        self.ignored(
            "definitions.user_attributes",
            &raw.definitions.user_attributes,
            "",
        );
    }
}
