//! The enrollment's stage machine: which [`EnrollmentStage`] each step of an invited person's
//! completion needs, and which it leads to. The services ask it before they write; the write
//! carries the stage they saw (`from`), and the store refuses it when the enrollment moved
//! meanwhile.
//!
//! ```text
//! Invited ─FillForm─▶ Form ─ConfirmCode─▶ Confirmed ─Approve(e-Onay, signature)─▶ Approved ─Produce─▶ Produced
//!           (again ↺)  │ ResendCode,          │ ChooseWet                  ▲  │ ReceiveCardCsr,    │ WritePackage
//!                      │ IssueCode,           ▼                            │  │ RecordProduction-  │
//!                      │ CountCodeAttempt  AwaitingWet ─Approve(wet)───────┘  │ Failure            │
//!                                          │ PrintWetForm
//! ```

use ca_core::store::{ApprovalMethod, EnrollmentStage};

use crate::error::{RaError, Result};

/// One step of an invited person's completion that depends on the enrollment's stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The form is filled (again, while the code is unconfirmed).
    FillForm,
    /// Another SMS code is asked for.
    ResendCode,
    /// The outbox draws the code it is about to send.
    IssueCode,
    /// A wrong code is counted.
    CountCodeAttempt,
    /// The SMS code confirms the mobile number.
    ConfirmCode,
    /// Approval by wet signature is chosen: the printed form is awaited.
    ChooseWet,
    /// The form to sign on paper is printed again, while it is awaited.
    PrintWetForm,
    /// The application is approved by this method.
    Approve(ApprovalMethod),
    /// The card bureau's CSR arrives.
    ReceiveCardCsr,
    /// A production attempt failed.
    RecordProductionFailure,
    /// The certificate is issued.
    Produce,
    /// The card personalisation package is written out.
    WritePackage,
}

/// A step the machine allows: the stage it starts from (what the write expects) and the one
/// it leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub from: EnrollmentStage,
    pub to: EnrollmentStage,
}

impl Step {
    /// The stage this step leads to from `from`, or `None` when it may not happen there.
    pub fn leads_to(self, from: EnrollmentStage) -> Option<EnrollmentStage> {
        use EnrollmentStage as S;
        match (self, from) {
            (Step::FillForm, S::Invited | S::Form) => Some(S::Form),
            (Step::ResendCode | Step::IssueCode | Step::CountCodeAttempt, S::Form) => Some(S::Form),
            (Step::ConfirmCode, S::Form) => Some(S::Confirmed),
            (Step::ChooseWet, S::Confirmed) => Some(S::AwaitingWet),
            (Step::PrintWetForm, S::AwaitingWet) => Some(S::AwaitingWet),
            (Step::Approve(ApprovalMethod::Wet), S::AwaitingWet) => Some(S::Approved),
            (Step::Approve(ApprovalMethod::EOnay | ApprovalMethod::Signature), S::Confirmed) => {
                Some(S::Approved)
            }
            (Step::ReceiveCardCsr | Step::RecordProductionFailure, S::Approved) => {
                Some(S::Approved)
            }
            (Step::Produce, S::Approved) => Some(S::Produced),
            (Step::WritePackage, S::Produced) => Some(S::Produced),
            _ => None,
        }
    }

    /// Whether application `id`, at `stage` (`None`: no enrollment yet), may take this step:
    /// the transition, or a [`RaError::Conflict`] on the field `stage` saying where the
    /// application is and what the step needs.
    pub fn check(self, id: &str, stage: Option<EnrollmentStage>) -> Result<Transition> {
        match stage.and_then(|from| {
            Some(Transition {
                from,
                to: self.leads_to(from)?,
            })
        }) {
            Some(t) => Ok(t),
            None => Err(RaError::Conflict {
                field: "stage",
                rule: self.refusal(id, stage.map_or("not started", EnrollmentStage::as_str)),
            }),
        }
    }

    /// What the applicant or operator hears when the step comes at the wrong stage.
    fn refusal(self, id: &str, now: &str) -> String {
        let needs = |needs: &str| format!("application {id} is {now}; this step needs it {needs}");
        match self {
            Step::FillForm => format!(
                "application {id} is {now}; the form is filled before the code is confirmed"
            ),
            Step::ResendCode | Step::CountCodeAttempt => {
                format!("application {id} has no code awaiting confirmation")
            }
            Step::IssueCode => needs("awaiting its SMS code"),
            Step::ConfirmCode => {
                format!("application {id} is {now}; a code is confirmed after the form")
            }
            Step::ChooseWet | Step::Approve(ApprovalMethod::EOnay | ApprovalMethod::Signature) => {
                needs("with its mobile number confirmed")
            }
            Step::PrintWetForm => format!(
                "application {id} is {now}; the printed form is only for an application awaiting its wet signature"
            ),
            Step::Approve(ApprovalMethod::Wet) => format!(
                "application {id} is {now}; a wet signature is received when the applicant chose it"
            ),
            Step::ReceiveCardCsr | Step::RecordProductionFailure => {
                needs("approved and not yet produced")
            }
            Step::Produce => {
                format!("application {id} is {now}; only an approved one is produced")
            }
            Step::WritePackage => needs("produced"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use EnrollmentStage as S;

    const STEPS: [Step; 14] = [
        Step::FillForm,
        Step::ResendCode,
        Step::IssueCode,
        Step::CountCodeAttempt,
        Step::ConfirmCode,
        Step::ChooseWet,
        Step::PrintWetForm,
        Step::Approve(ApprovalMethod::EOnay),
        Step::Approve(ApprovalMethod::Signature),
        Step::Approve(ApprovalMethod::Wet),
        Step::ReceiveCardCsr,
        Step::RecordProductionFailure,
        Step::Produce,
        Step::WritePackage,
    ];

    /// Every legal transition, and nothing else.
    const LEGAL: [(Step, S, S); 15] = [
        (Step::FillForm, S::Invited, S::Form),
        (Step::FillForm, S::Form, S::Form),
        (Step::ResendCode, S::Form, S::Form),
        (Step::IssueCode, S::Form, S::Form),
        (Step::CountCodeAttempt, S::Form, S::Form),
        (Step::ConfirmCode, S::Form, S::Confirmed),
        (Step::ChooseWet, S::Confirmed, S::AwaitingWet),
        (Step::PrintWetForm, S::AwaitingWet, S::AwaitingWet),
        (
            Step::Approve(ApprovalMethod::EOnay),
            S::Confirmed,
            S::Approved,
        ),
        (
            Step::Approve(ApprovalMethod::Signature),
            S::Confirmed,
            S::Approved,
        ),
        (
            Step::Approve(ApprovalMethod::Wet),
            S::AwaitingWet,
            S::Approved,
        ),
        (Step::ReceiveCardCsr, S::Approved, S::Approved),
        (Step::RecordProductionFailure, S::Approved, S::Approved),
        (Step::Produce, S::Approved, S::Produced),
        (Step::WritePackage, S::Produced, S::Produced),
    ];

    #[test]
    fn every_legal_transition_is_allowed() {
        for (step, from, to) in LEGAL {
            assert_eq!(
                step.check("pa-1", Some(from)).unwrap(),
                Transition { from, to },
                "{step:?} from {from}"
            );
        }
    }

    #[test]
    fn every_other_pair_is_refused_on_the_stage() {
        for step in STEPS {
            for from in S::ALL {
                if LEGAL.iter().any(|(s, f, _)| (*s, *f) == (step, from)) {
                    continue;
                }
                match step.check("pa-1", Some(from)) {
                    Err(RaError::Conflict {
                        field: "stage",
                        rule,
                    }) => {
                        assert!(rule.contains("application pa-1"), "{rule}")
                    }
                    other => panic!("{step:?} from {from}: {other:?}"),
                }
            }
            // No enrollment at all: nothing may happen to it.
            let err = step.check("pa-1", None).unwrap_err();
            assert!(
                matches!(err, RaError::Conflict { field: "stage", .. }),
                "{err}"
            );
        }
    }

    #[test]
    fn refusals_say_where_the_application_is_and_what_the_step_needs() {
        let rule = |step: Step, from| step.check("pa-1", from).unwrap_err().to_string();
        assert_eq!(
            rule(Step::FillForm, Some(S::Confirmed)),
            "stage: application pa-1 is confirmed; the form is filled before the code is confirmed"
        );
        assert_eq!(
            rule(Step::ResendCode, Some(S::Approved)),
            "stage: application pa-1 has no code awaiting confirmation"
        );
        assert_eq!(
            rule(Step::ConfirmCode, Some(S::Invited)),
            "stage: application pa-1 is invited; a code is confirmed after the form"
        );
        assert_eq!(
            rule(Step::Approve(ApprovalMethod::Signature), Some(S::AwaitingWet)),
            "stage: application pa-1 is awaiting_wet; this step needs it with its mobile number confirmed"
        );
        assert_eq!(
            rule(Step::PrintWetForm, Some(S::Approved)),
            "stage: application pa-1 is approved; the printed form is only for an application awaiting its wet signature"
        );
        assert_eq!(
            rule(Step::Approve(ApprovalMethod::Wet), Some(S::Approved)),
            "stage: application pa-1 is approved; a wet signature is received when the applicant chose it"
        );
        assert_eq!(
            rule(Step::ReceiveCardCsr, Some(S::Produced)),
            "stage: application pa-1 is produced; this step needs it approved and not yet produced"
        );
        assert_eq!(
            rule(Step::Produce, None),
            "stage: application pa-1 is not started; only an approved one is produced"
        );
        assert_eq!(
            rule(Step::WritePackage, Some(S::Approved)),
            "stage: application pa-1 is approved; this step needs it produced"
        );
    }
}
