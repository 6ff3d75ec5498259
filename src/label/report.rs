//! The labels report for Health Information Management: per sensitivity category, how many
//! resources of each type the labeling service labelled (and how many by words alone), and
//! the gaps to review — resources with no sensitivity label whose texts contain a word of
//! the labels file's wide `review_terms` net. It reads labelled records and counts; it never
//! labels, never decides who sees what, and lists ids and code displays, never notes.

use super::rules::{word_regex, Facts};
use super::{sensitivity_labels_of, BY_WORDS};
use crate::fhir;
use regex::Regex;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// What was labelled in one category (a sensitivity code).
#[derive(Debug, Default, Clone, Serialize)]
pub struct CategoryCount {
    /// Resources carrying the label.
    pub resources: usize,
    /// Of those, per resource type.
    pub by_type: BTreeMap<String, usize>,
    /// Of those, labelled by a rule's words only (no listed code), before propagation.
    pub by_words_only: usize,
}

/// One resource that carries no sensitivity label but whose words ask for a look.
#[derive(Debug, Clone, Serialize)]
pub struct Gap {
    pub patient: String,
    /// Gateway `Type/id`.
    pub resource: String,
    /// The text (a code display or `CodeableConcept.text`) that matched.
    pub text: String,
    /// The review word it matched.
    pub matched: String,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct LabelsReport {
    pub records: usize,
    pub resources: usize,
    pub categories: BTreeMap<String, CategoryCount>,
    pub gaps: Vec<Gap>,
}

/// The wide net of words for gap review (`review_terms` in labels.toml).
#[derive(Debug, Clone, Default)]
pub struct ReviewTerms(Option<Regex>);

impl ReviewTerms {
    pub fn new(words: &[String]) -> Result<ReviewTerms, super::rules::WordsError> {
        word_regex("review_terms", words).map(ReviewTerms)
    }
}

impl LabelsReport {
    /// Counts one labelled record: its resources, and `why` (per `Type/id`, what labelled
    /// it, as [`super::Labeler::label_record`] returns it).
    pub fn add_record(
        &mut self,
        patient: &str,
        resources: &[Value],
        why: &BTreeMap<String, Vec<String>>,
        review: &ReviewTerms,
    ) {
        self.records += 1;
        for r in resources {
            let (Some(t), Some(id)) = (fhir::resource_type(r), fhir::resource_id(r)) else { continue };
            self.resources += 1;
            let key = format!("{t}/{id}");
            let labels = sensitivity_labels_of(r);
            let words_only = why.get(&key).is_some_and(|w| {
                w.iter().any(|x| x.ends_with(BY_WORDS))
                    && !w.iter().any(|x| !x.ends_with(BY_WORDS) && !x.starts_with("propagated:"))
            });
            for label in &labels {
                let c = self.categories.entry(label.clone()).or_default();
                c.resources += 1;
                *c.by_type.entry(t.to_string()).or_default() += 1;
                if words_only {
                    c.by_words_only += 1;
                }
            }
            if !labels.is_empty() {
                continue;
            }
            let Some(net) = &review.0 else { continue };
            for (text, _) in Facts::of(r).texts {
                if let Some(m) = net.find(text) {
                    let matched = m.as_str().to_string();
                    let text = text.to_string();
                    self.gaps.push(Gap { patient: patient.to_string(), resource: key.clone(), text, matched });
                    break;
                }
            }
        }
    }

    /// The report as text for a terminal.
    pub fn render(&self) -> String {
        let mut out = format!("{} records, {} resources\n\nlabelled, by category:\n", self.records, self.resources);
        for (label, c) in &self.categories {
            let types: Vec<String> = c.by_type.iter().map(|(t, n)| format!("{t} {n}")).collect();
            out.push_str(&format!(
                "  {label:<10} {:>6} resources ({} by words only): {}\n",
                c.resources,
                c.by_words_only,
                types.join(", ")
            ));
        }
        let mut by_text: BTreeMap<(&str, &str), Vec<&Gap>> = BTreeMap::new();
        for g in &self.gaps {
            by_text.entry((g.matched.as_str(), g.text.as_str())).or_default().push(g);
        }
        out.push_str(&format!(
            "\nto review: {} unlabelled resources whose words look sensitive ({} distinct texts)\n",
            self.gaps.len(),
            by_text.len()
        ));
        for ((matched, text), gaps) in &by_text {
            let example = gaps.first().map(|g| g.resource.as_str()).unwrap_or_default();
            out.push_str(&format!("  {:>5} × \"{text}\" (word: {matched}; e.g. {example})\n", gaps.len()));
        }
        out
    }
}
