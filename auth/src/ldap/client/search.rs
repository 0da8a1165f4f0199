//! Searches (docs/reference/ldap.md §5.3): one search bounded by the timeout, its result code
//! read, and with `permit_referrals` the referrals it returns followed one hop (§5.7 item 12).

use ldap3::{Ldap, LdapResult, ResultEntry, Scope, SearchEntry, SearchOptions};

use super::{LdapDirectory, LdapError, Referral, rc, referral, unavailable};

/// One search's answer as the directory gave it. The result's `refs` hold both the referral of
/// a result 10 and the URLs of the search result references (continuation references) that
/// came with the entries.
struct SearchAnswer {
    entries: Vec<SearchEntry>,
    result: LdapResult,
}

/// Whether `entry` has the shape `SearchEntry::construct` expects (RFC 4511 §4.5.2: a DN, then
/// attributes, each a type and a set of values): that function panics on anything else, and a
/// directory's bytes must never panic the server.
pub(super) fn well_formed(entry: &ResultEntry) -> bool {
    use ldap3::asn1::{PL, StructureTag};
    fn primitive_utf8(tag: &StructureTag) -> bool {
        matches!(&tag.payload, PL::P(bytes) if std::str::from_utf8(bytes).is_ok())
    }
    fn primitive(tag: &StructureTag) -> bool {
        matches!(&tag.payload, PL::P(_))
    }
    let tag = &entry.0;
    let PL::C(parts) = &tag.payload else {
        return false;
    };
    let [dn, attributes] = parts.as_slice() else {
        return false;
    };
    let PL::C(attributes) = &attributes.payload else {
        return false;
    };
    tag.id == 4
        && primitive_utf8(dn)
        && attributes.iter().all(|attribute| match &attribute.payload {
            PL::C(pair) => match pair.as_slice() {
                [name, values] => {
                    primitive_utf8(name)
                        && matches!(&values.payload, PL::C(v) if v.iter().all(primitive))
                }
                _ => false,
            },
            PL::P(_) => false,
        })
}

impl LdapDirectory {
    /// The entries under `base` that match `filter`, on the configured directory and, with
    /// `permit_referrals`, on the servers its referrals name (one hop, entries merged by DN).
    pub(super) async fn search(
        &self,
        base: &str,
        filter: &str,
        attributes: &[&str],
        size_limit: i32,
    ) -> Result<Vec<SearchEntry>, LdapError> {
        let (slot, mut ldap) = self.service().await?;
        let answer = match self
            .search_on(&mut ldap, base, filter, attributes, size_limit)
            .await
        {
            Ok(answer) => answer,
            Err(e) => {
                self.drop_service(slot).await;
                return Err(e);
            }
        };
        let (mut entries, to_follow) = self.classify(answer)?;
        for url in to_follow {
            let Some(referral) = referral::parse(&url) else {
                tracing::warn!(%url, "a search reference names no server that can be followed: skipped");
                continue;
            };
            let more = self
                .search_referred(&referral, base, filter, attributes, size_limit)
                .await?;
            for entry in more {
                if !entries.iter().any(|e| e.dn.eq_ignore_ascii_case(&entry.dn)) {
                    self.remember_home(&entry.dn, &referral.address);
                    entries.push(entry);
                }
            }
        }
        Ok(entries)
    }

    /// The same search on the server `referral` names, based at the entry it names. Referrals
    /// it answers with in turn are not followed: one hop, so that two directories referring to
    /// each other cannot loop.
    async fn search_referred(
        &self,
        referral: &Referral,
        base: &str,
        filter: &str,
        attributes: &[&str],
        size_limit: i32,
    ) -> Result<Vec<SearchEntry>, LdapError> {
        tracing::debug!(address = %referral.address, "following a referral");
        let mut ldap = self.referred(referral).await?;
        let base = referral.dn.as_deref().unwrap_or(base);
        let answer = self
            .search_on(&mut ldap, base, filter, attributes, size_limit)
            .await;
        let _ = ldap.unbind().await;
        let answer = answer?;
        if answer.result.rc == rc::REFERRAL {
            return Err(LdapError::Protocol(format!(
                "the referred directory {} referred again (not followed)",
                referral.address
            )));
        }
        Ok(self.classify(answer)?.0)
    }

    /// One search on `ldap`, bounded by the timeout. Only a failure to get an answer is an
    /// error here; the answer's result code is the caller's to read.
    async fn search_on(
        &self,
        ldap: &mut Ldap,
        base: &str,
        filter: &str,
        attributes: &[&str],
        size_limit: i32,
    ) -> Result<SearchAnswer, LdapError> {
        let mut options = SearchOptions::new();
        if size_limit > 0 {
            options = options.sizelimit(size_limit);
        }
        let answer = tokio::time::timeout(
            self.config.timeout,
            ldap.with_search_options(options).search(
                base,
                Scope::Subtree,
                filter,
                attributes.to_vec(),
            ),
        )
        .await
        .map_err(|_| unavailable("the search timed out"))?
        .map_err(unavailable)?;
        let entries: Vec<ResultEntry> = answer
            .0
            .into_iter()
            .filter(|e| !e.is_ref() && !e.is_intermediate())
            .collect();
        if !entries.iter().all(well_formed) {
            return Err(LdapError::Protocol(
                "the directory sent a malformed search entry".into(),
            ));
        }
        Ok(SearchAnswer {
            entries: entries.into_iter().map(SearchEntry::construct).collect(),
            result: answer.1,
        })
    }

    /// The entries of an answer, and the referrals to follow for the rest of them.
    fn classify(&self, answer: SearchAnswer) -> Result<(Vec<SearchEntry>, Vec<String>), LdapError> {
        let SearchAnswer { entries, result } = answer;
        match result.rc {
            // Continuation references are ignored without `permit_referrals`, as Authelia does:
            // the entries this directory holds are the answer.
            rc::SUCCESS if self.config.permit_referrals => Ok((entries, result.refs)),
            rc::SUCCESS => Ok((entries, Vec::new())),
            // More than one entry matched a search limited to one.
            rc::SIZE_LIMIT_EXCEEDED => Err(LdapError::Ambiguous),
            // The base does not exist, so nothing matches.
            rc::NO_SUCH_OBJECT => Ok((Vec::new(), Vec::new())),
            // The base itself is held elsewhere.
            rc::REFERRAL if self.config.permit_referrals => Ok((entries, result.refs)),
            rc::REFERRAL => Err(LdapError::Protocol(format!(
                "the directory referred the search to {:?}, and permit_referrals is off",
                result.refs
            ))),
            code => Err(LdapError::Protocol(format!(
                "search result {code}: {}",
                result.text
            ))),
        }
    }
}
