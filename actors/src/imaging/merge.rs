//! Folding received instances into a study: the pure part of the imaging
//! service, with no store in sight.
//!
//! A [`StudyFold`] holds one study and an index of its series and SOP
//! Instance UIDs, so folding the instances of a whole batch costs one lookup
//! each rather than a scan of every instance so far. Folding is idempotent:
//! an instance already held (a redelivery, a resend with a new event id)
//! changes nothing, and nothing is ever taken away, so whatever was folded
//! once is still there after any later fold.

use std::collections::{HashMap, HashSet};

use medbus_bus::canonical::{Coding, ImagingStudy, ImagingStudySeries, ImagingStudyStatus};

/// One study being folded, with the indexes that keep folding cheap.
#[derive(Debug, Clone)]
pub struct StudyFold {
    study: ImagingStudy,
    /// Series UID → position in `study.series`.
    series: HashMap<String, usize>,
    /// Every SOP Instance UID held, whatever its series.
    instances: HashSet<String>,
}

impl StudyFold {
    /// Starts from `study` as stored (or the first one received). The counts
    /// are made exact at once, so a study stored by an older build or sent
    /// with counts of the sender's is put right by the first fold.
    pub fn new(study: ImagingStudy) -> Self {
        let mut fold = StudyFold {
            study,
            series: HashMap::new(),
            instances: HashSet::new(),
        };
        for (n, s) in fold.study.series.iter().enumerate() {
            fold.series.entry(s.uid.clone()).or_insert(n);
            for i in &s.instance {
                fold.instances.insert(i.uid.clone());
            }
        }
        fold.recount();
        fold
    }

    /// Starts a new study from the first event about it: its study-level
    /// elements, no series yet (the caller folds the event's series in next).
    pub fn empty_like(first: &ImagingStudy) -> Self {
        StudyFold::new(ImagingStudy {
            series: Vec::new(),
            modality: Vec::new(),
            number_of_series: None,
            number_of_instances: None,
            status: ImagingStudyStatus::Registered,
            id: None,
            ..first.clone()
        })
    }

    /// The study as folded so far.
    pub fn study(&self) -> &ImagingStudy {
        &self.study
    }

    /// Mutable access for the status; series and counts are the fold's own.
    pub fn set_status(&mut self, status: ImagingStudyStatus) {
        self.study.status = status;
    }

    /// Folds what `incoming` says into the study; true when anything changed.
    ///
    /// - series by Series Instance UID, instances by SOP Instance UID, each
    ///   kept where it was first seen (a SOP Instance UID already held in any
    ///   series is not added again);
    /// - elements the study or a series lacks (accession number, start,
    ///   description, series number, body site, order reference) are taken
    ///   from the first event that has them and then kept: a later event
    ///   never overwrites what an earlier one said;
    /// - counts and the modality list are recomputed from what is held.
    pub fn merge(&mut self, incoming: &ImagingStudy) -> bool {
        let mut changed = self.merge_study_elements(incoming);
        for s in &incoming.series {
            changed |= self.merge_series(s);
        }
        if changed {
            self.recount();
        }
        changed
    }

    fn merge_study_elements(&mut self, incoming: &ImagingStudy) -> bool {
        let st = &mut self.study;
        let mut changed = false;
        for id in &incoming.identifier {
            if !st.identifier.contains(id) {
                // Only an identifier of a kind not held yet: a second accession
                // number for one study would link it to two orders.
                let same_kind = st
                    .identifier
                    .iter()
                    .any(|held| held.system == id.system && held.type_ == id.type_);
                if !same_kind {
                    st.identifier.push(id.clone());
                    changed = true;
                }
            }
        }
        for r in &incoming.based_on {
            if !st.based_on.contains(r) {
                st.based_on.push(r.clone());
                changed = true;
            }
        }
        if st.subject.identifier.is_none() && incoming.subject.identifier.is_some() {
            st.subject = incoming.subject.clone();
            changed = true;
        }
        changed |= fill(&mut st.started, &incoming.started);
        changed |= fill(&mut st.description, &incoming.description);
        changed
    }

    fn merge_series(&mut self, incoming: &ImagingStudySeries) -> bool {
        let mut changed = false;
        let at = match self.series.get(&incoming.uid) {
            Some(&at) => at,
            // A series is added for a new instance only: one whose instances
            // are all held elsewhere would be an empty series.
            None if incoming.instance.iter().all(|i| self.instances.contains(&i.uid)) => return false,
            None => {
                self.study.series.push(ImagingStudySeries {
                    instance: Vec::new(),
                    number_of_instances: None,
                    ..incoming.clone()
                });
                let at = self.study.series.len() - 1;
                self.series.insert(incoming.uid.clone(), at);
                changed = true;
                at
            }
        };
        let Some(series) = self.study.series.get_mut(at) else {
            // The index only ever holds positions of pushed series.
            return changed;
        };
        changed |= fill(&mut series.number, &incoming.number);
        changed |= fill(&mut series.body_site, &incoming.body_site);
        for i in &incoming.instance {
            if self.instances.insert(i.uid.clone()) {
                series.instance.push(i.clone());
                changed = true;
            }
        }
        changed
    }

    /// Makes the counts and the modality list exact.
    fn recount(&mut self) {
        let st = &mut self.study;
        let mut total: u32 = 0;
        let mut modalities: Vec<Coding> = Vec::new();
        for s in &mut st.series {
            let n = u32::try_from(s.instance.len()).unwrap_or(u32::MAX);
            s.number_of_instances = Some(n);
            total = total.saturating_add(n);
            let known = modalities
                .iter()
                .any(|m| m.system == s.modality.system && m.code == s.modality.code);
            if !known {
                modalities.push(s.modality.clone());
            }
        }
        st.number_of_series = Some(u32::try_from(st.series.len()).unwrap_or(u32::MAX));
        st.number_of_instances = Some(total);
        st.modality = modalities;
    }
}

/// Sets `held` from `incoming` when it has nothing yet; true when it did.
fn fill<T: Clone>(held: &mut Option<T>, incoming: &Option<T>) -> bool {
    if held.is_none() && incoming.is_some() {
        held.clone_from(incoming);
        true
    } else {
        false
    }
}

#[cfg(test)]
#[path = "merge_tests.rs"]
mod tests;
