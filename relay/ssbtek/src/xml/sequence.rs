//! Matching an element's children against an XSD `xsd:sequence` of element
//! particles, optionally followed by a wildcard (`xsd:any`). One matcher serves
//! the question validator and the provider payload check.

/// One element particle: expanded name and occurrence bounds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Particle {
    pub(crate) ns: Option<&'static str>,
    pub(crate) local: &'static str,
    pub(crate) min: usize,
    pub(crate) max: usize,
}

impl Particle {
    pub(crate) const fn one(ns: Option<&'static str>, local: &'static str) -> Self {
        Self {
            ns,
            local,
            min: 1,
            max: 1,
        }
    }

    pub(crate) const fn optional(ns: Option<&'static str>, local: &'static str) -> Self {
        Self {
            ns,
            local,
            min: 0,
            max: 1,
        }
    }

    pub(crate) const fn many(ns: Option<&'static str>, local: &'static str) -> Self {
        Self {
            ns,
            local,
            min: 0,
            max: usize::MAX,
        }
    }
}

/// An `xsd:any` after the last particle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wildcard {
    None,
    /// `namespace="##any"`.
    Any,
    /// `namespace="##other"`: any namespace but this one (and not none).
    Other(&'static str),
}

impl Wildcard {
    fn accepts(self, ns: Option<&str>) -> bool {
        match self {
            Wildcard::None => false,
            Wildcard::Any => true,
            Wildcard::Other(own) => ns.is_some_and(|ns| ns != own),
        }
    }
}

/// Why children do not match. Indexes are into the particles, except `Unknown`,
/// which holds the 0-based position of the child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SequenceError {
    Missing(usize),
    OutOfOrder(usize),
    TooMany(usize),
    WrongNamespace(usize),
    Unknown(usize),
}

/// Which particle each child matched (`None` for the wildcard).
// Every index here is a particle position (`position()` over `particles`, or a
// range below `particles.len()`, checked before use) into `particles` and
// `counts`, which have the same length, or a child position from
// `enumerate()`; none comes from the input's values.
#[allow(clippy::indexing_slicing)]
pub(crate) fn match_sequence<'a>(
    children: &[(Option<&'a str>, &'a str)],
    particles: &[Particle],
    wildcard: Wildcard,
) -> Result<Vec<Option<usize>>, SequenceError> {
    let mut counts = vec![0usize; particles.len()];
    let mut at = 0usize; // current particle; `particles.len()` once in the wildcard
    let mut matched = Vec::with_capacity(children.len());
    let missing_between =
        |counts: &[usize], from: usize, to: usize, rest: &[(Option<&str>, &str)]| {
            (from..to).find(|&k| counts[k] < particles[k].min).map(|k| {
                let p = particles[k];
                if rest
                    .iter()
                    .any(|(ns, local)| *ns == p.ns && *local == p.local)
                {
                    SequenceError::OutOfOrder(k)
                } else {
                    SequenceError::Missing(k)
                }
            })
        };
    for (i, &(ns, local)) in children.iter().enumerate() {
        let rest = &children[i + 1..];
        let found = particles
            .iter()
            .position(|p| p.ns == ns && p.local == local);
        let fits_here = found.is_some_and(|j| {
            at < particles.len() && (j > at || (j == at && counts[j] < particles[j].max))
        });
        if let (Some(j), true) = (found, fits_here) {
            if let Some(e) = missing_between(&counts, at, j, &children[i..]) {
                return Err(e);
            }
            at = j;
            counts[j] += 1;
            matched.push(Some(j));
            continue;
        }
        if wildcard.accepts(ns) {
            if let Some(e) = missing_between(&counts, at, particles.len(), rest) {
                return Err(e);
            }
            at = particles.len();
            matched.push(None);
            continue;
        }
        return Err(match found {
            Some(j) if j == at && at < particles.len() => SequenceError::TooMany(j),
            Some(j) => SequenceError::OutOfOrder(j),
            None => match particles.iter().position(|p| p.local == local) {
                Some(j) => SequenceError::WrongNamespace(j),
                None => SequenceError::Unknown(i),
            },
        });
    }
    if let Some(e) = missing_between(&counts, at, particles.len(), &[]) {
        return Err(e);
    }
    Ok(matched)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NS: Option<&str> = Some("urn:x");
    const SEQ: [Particle; 4] = [
        Particle::optional(NS, "a"),
        Particle::one(NS, "b"),
        Particle::many(NS, "c"),
        Particle::one(NS, "d"),
    ];

    fn run(names: &[&'static str]) -> Result<Vec<Option<usize>>, SequenceError> {
        let children: Vec<_> = names.iter().map(|n| (NS, *n)).collect();
        match_sequence(&children, &SEQ, Wildcard::None)
    }

    #[test]
    fn valid_sequences_match() {
        assert_eq!(run(&["b", "d"]), Ok(vec![Some(1), Some(3)]));
        assert_eq!(
            run(&["a", "b", "c", "c", "d"]),
            Ok(vec![Some(0), Some(1), Some(2), Some(2), Some(3)])
        );
    }

    #[test]
    fn violations_are_named() {
        assert_eq!(run(&["d"]), Err(SequenceError::Missing(1)));
        assert_eq!(run(&["b"]), Err(SequenceError::Missing(3)));
        assert_eq!(run(&["d", "b"]), Err(SequenceError::OutOfOrder(1)));
        assert_eq!(run(&["b", "a", "d"]), Err(SequenceError::OutOfOrder(0)));
        assert_eq!(run(&["b", "b", "d"]), Err(SequenceError::TooMany(1)));
        assert_eq!(run(&["b", "x", "d"]), Err(SequenceError::Unknown(1)));
        let wrong_ns = [(NS, "b"), (None, "d")];
        assert_eq!(
            match_sequence(&wrong_ns, &SEQ, Wildcard::None),
            Err(SequenceError::WrongNamespace(3))
        );
    }

    #[test]
    fn wildcards_take_what_follows_the_particles() {
        let seq = [Particle::one(NS, "a"), Particle::one(NS, "b")];
        let any = [(NS, "a"), (NS, "b"), (None, "x"), (NS, "a")];
        assert_eq!(
            match_sequence(&any, &seq, Wildcard::Any),
            Ok(vec![Some(0), Some(1), None, None])
        );
        let early = [(NS, "a"), (None, "x"), (NS, "b")];
        assert_eq!(
            match_sequence(&early, &seq, Wildcard::Any),
            Err(SequenceError::OutOfOrder(1))
        );
        let other = [(NS, "a"), (NS, "b"), (Some("urn:y"), "x")];
        assert!(match_sequence(&other, &seq, Wildcard::Other("urn:x")).is_ok());
        let own = [(NS, "a"), (NS, "b"), (NS, "x")];
        assert_eq!(
            match_sequence(&own, &seq, Wildcard::Other("urn:x")),
            Err(SequenceError::Unknown(2))
        );
    }
}
