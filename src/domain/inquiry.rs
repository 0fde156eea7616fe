use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::email::EmailAddress;

/// What the visitor says the inquiry is about.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    #[default]
    Inquiry,
    Question,
    Commendation,
    Other,
}

impl Category {
    pub const ALL: [Category; 4] = [Self::Inquiry, Self::Question, Self::Commendation, Self::Other];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inquiry => "inquiry",
            Self::Question => "question",
            Self::Commendation => "commendation",
            Self::Other => "other",
        }
    }
}

/// Where an inquiry stands in triage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InquiryStatus {
    New,
    InProgress,
    Resolved,
    Spam,
    Archived,
}

impl InquiryStatus {
    pub const ALL: [InquiryStatus; 5] = [Self::New, Self::InProgress, Self::Resolved, Self::Spam, Self::Archived];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::InProgress => "in_progress",
            Self::Resolved => "resolved",
            Self::Spam => "spam",
            Self::Archived => "archived",
        }
    }
}

macro_rules! parse_by_name {
    ($ty:ty) => {
        impl FromStr for $ty {
            type Err = String;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::ALL.into_iter().find(|v| v.as_str() == s).ok_or_else(|| {
                    let names: Vec<_> = Self::ALL.iter().map(|v| v.as_str()).collect();
                    format!("must be one of {}", names.join(", "))
                })
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(self.as_str())
            }
        }
    };
}

parse_by_name!(Category);
parse_by_name!(InquiryStatus);
parse_by_name!(NotificationKind);

/// A submission that passed every rule of the contract, text trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewInquiry {
    pub name: String,
    pub email: EmailAddress,
    pub subject: String,
    pub message: String,
    pub category: Category,
    pub organization: Option<String>,
    pub country: Option<String>,
    pub phone: Option<String>,
    pub consent: Option<bool>,
    pub page: Option<String>,
    /// The id of the form it was sent with.
    pub form: String,
    /// The form's custom fields that were given, by name.
    pub fields: serde_json::Map<String, serde_json::Value>,
}

/// Which email a notification row stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// To the institute inbox, Reply-To the visitor.
    Staff,
    /// To the visitor, acknowledging receipt.
    Receipt,
}

impl NotificationKind {
    pub const ALL: [NotificationKind; 2] = [Self::Staff, Self::Receipt];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Staff => "staff",
            Self::Receipt => "receipt",
        }
    }
}
