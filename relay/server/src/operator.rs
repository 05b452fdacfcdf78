//! Operator decisions that change at run time without a restart: suspended
//! callers (optionally per product), municipalities withdrawn by one provider,
//! and maintenance mode. Start-up values come from the configuration; admin
//! actions change them in memory (and are written to the audit trail by the
//! admin endpoint that calls these methods).

use std::collections::BTreeSet;
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};

use relay_ident::Organisationsnummer;

use crate::config::ProductName;

/// What a suspension covers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// Every product.
    All,
    /// One product.
    Product(ProductName),
}

/// The operator's run-time decisions.
#[derive(Debug, Default)]
pub struct OperatorState {
    suspended: RwLock<BTreeSet<(Organisationsnummer, Scope)>>,
    withdrawn: RwLock<BTreeSet<(String, Organisationsnummer)>>,
    /// ELT assistance companies (anordnare) shut off.
    anordnare: RwLock<BTreeSet<Organisationsnummer>>,
    maintenance: AtomicBool,
    /// The register of parties as this node last read it (the policy gate's view).
    pub parties: crate::parties::Book,
}

impl OperatorState {
    pub fn suspend(&self, org: Organisationsnummer, scope: Scope) -> bool {
        write(&self.suspended).insert((org, scope))
    }

    pub fn resume(&self, org: &Organisationsnummer, scope: &Scope) -> bool {
        write(&self.suspended).remove(&(*org, scope.clone()))
    }

    /// Whether `org` is suspended for `product` (by a product or an all-products suspension).
    pub fn is_suspended(&self, org: &Organisationsnummer, product: ProductName) -> bool {
        let s = read(&self.suspended);
        s.contains(&(*org, Scope::All)) || s.contains(&(*org, Scope::Product(product)))
    }

    /// Whether `org` is suspended from everything (not just one product).
    pub fn is_suspended_from_all(&self, org: &Organisationsnummer) -> bool {
        read(&self.suspended).contains(&(*org, Scope::All))
    }

    pub fn suspensions(&self) -> Vec<(Organisationsnummer, Scope)> {
        read(&self.suspended).iter().cloned().collect()
    }

    pub fn withdraw(&self, provider: &str, municipality: Organisationsnummer) -> bool {
        write(&self.withdrawn).insert((provider.to_owned(), municipality))
    }

    pub fn restore(&self, provider: &str, municipality: &Organisationsnummer) -> bool {
        write(&self.withdrawn).remove(&(provider.to_owned(), *municipality))
    }

    /// Replaces every suspension, withdrawal and anordnare shut off at once (a
    /// node following a shared store); maintenance is left as it is.
    pub fn replace(
        &self,
        suspended: BTreeSet<(Organisationsnummer, Scope)>,
        withdrawn: BTreeSet<(String, Organisationsnummer)>,
        anordnare: BTreeSet<Organisationsnummer>,
    ) {
        *write(&self.suspended) = suspended;
        *write(&self.withdrawn) = withdrawn;
        *write(&self.anordnare) = anordnare;
    }

    /// Every (provider, municipality) withdrawal in force.
    pub fn withdrawals(&self) -> Vec<(String, Organisationsnummer)> {
        read(&self.withdrawn).iter().cloned().collect()
    }

    pub fn is_withdrawn(&self, provider: &str, municipality: &Organisationsnummer) -> bool {
        read(&self.withdrawn).contains(&(provider.to_owned(), *municipality))
    }

    /// Shuts off an ELT assistance company: its reports are refused, from any vendor.
    pub fn suspend_anordnare(&self, org: Organisationsnummer) -> bool {
        write(&self.anordnare).insert(org)
    }

    pub fn resume_anordnare(&self, org: &Organisationsnummer) -> bool {
        write(&self.anordnare).remove(org)
    }

    pub fn is_anordnare_suspended(&self, org: &Organisationsnummer) -> bool {
        read(&self.anordnare).contains(org)
    }

    pub fn suspended_anordnare(&self) -> Vec<Organisationsnummer> {
        read(&self.anordnare).iter().copied().collect()
    }

    pub fn set_maintenance(&self, on: bool) {
        self.maintenance.store(on, Ordering::SeqCst);
    }

    pub fn maintenance(&self) -> bool {
        self.maintenance.load(Ordering::SeqCst)
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org(s: &str) -> Organisationsnummer {
        Organisationsnummer::parse(s).unwrap()
    }

    #[test]
    fn a_suspension_covers_its_scope_and_is_lifted_again() {
        let state = OperatorState::default();
        let sundsvall = org("2120002411");
        assert!(state.suspend(sundsvall, Scope::Product(ProductName::Ssbtek)));
        assert!(state.is_suspended(&sundsvall, ProductName::Ssbtek));
        assert!(!state.is_suspended(&sundsvall, ProductName::Ping));
        state.suspend(sundsvall, Scope::All);
        assert!(state.is_suspended(&sundsvall, ProductName::Ping));
        state.resume(&sundsvall, &Scope::All);
        state.resume(&sundsvall, &Scope::Product(ProductName::Ssbtek));
        assert!(!state.is_suspended(&sundsvall, ProductName::Ssbtek));
    }

    #[test]
    fn a_withdrawal_is_per_provider() {
        let state = OperatorState::default();
        let stockholm = org("2120000142");
        state.withdraw("CSN", stockholm);
        assert!(state.is_withdrawn("CSN", &stockholm));
        assert!(!state.is_withdrawn("FK", &stockholm));
        state.restore("CSN", &stockholm);
        assert!(!state.is_withdrawn("CSN", &stockholm));
    }
}
