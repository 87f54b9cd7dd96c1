//! The command line's names for the library's choices: clap's `ValueEnum` stays out
//! of the library, and each of these maps onto the library type it names.

use clap::ValueEnum;

use mailvault::export::ExportFormat;
use mailvault::index::Sort;
use mailvault::plan::namespace::NamespaceKind;
use mailvault::source::MboxFormat;

/// `--mbox-format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum MboxFormatArg {
    Mboxrd,
    Mboxo,
}

impl From<MboxFormatArg> for MboxFormat {
    fn from(a: MboxFormatArg) -> MboxFormat {
        match a {
            MboxFormatArg::Mboxrd => MboxFormat::Mboxrd,
            MboxFormatArg::Mboxo => MboxFormat::Mboxo,
        }
    }
}

/// `export --format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExportFormatArg {
    Eml,
    Maildir,
    Mbox,
}

impl From<ExportFormatArg> for ExportFormat {
    fn from(a: ExportFormatArg) -> ExportFormat {
        match a {
            ExportFormatArg::Eml => ExportFormat::Eml,
            ExportFormatArg::Maildir => ExportFormat::Maildir,
            ExportFormatArg::Mbox => ExportFormat::Mbox,
        }
    }
}

/// `pull --namespace`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum NamespaceArg {
    /// The user's own folders.
    Personal,
    /// Other users' folders shared with this one.
    Other,
    /// Folders shared by everyone (public folders).
    Shared,
}

impl From<NamespaceArg> for NamespaceKind {
    fn from(a: NamespaceArg) -> NamespaceKind {
        match a {
            NamespaceArg::Personal => NamespaceKind::Personal,
            NamespaceArg::Other => NamespaceKind::Other,
            NamespaceArg::Shared => NamespaceKind::Shared,
        }
    }
}

/// `search --sort`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SortArg {
    /// Newest first.
    #[value(name = "-date")]
    DateDesc,
    /// Oldest first.
    #[value(name = "date")]
    DateAsc,
    Relevance,
}

impl From<SortArg> for Sort {
    fn from(a: SortArg) -> Sort {
        match a {
            SortArg::DateDesc => Sort::DateDesc,
            SortArg::DateAsc => Sort::DateAsc,
            SortArg::Relevance => Sort::Relevance,
        }
    }
}

/// `--oauth2-mechanism`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OAuthMechanismArg {
    Xoauth2,
    Oauthbearer,
}

impl From<OAuthMechanismArg> for mailvault::remote::OAuthMechanism {
    fn from(a: OAuthMechanismArg) -> Self {
        match a {
            OAuthMechanismArg::Xoauth2 => mailvault::remote::OAuthMechanism::XOAuth2,
            OAuthMechanismArg::Oauthbearer => mailvault::remote::OAuthMechanism::OAuthBearer,
        }
    }
}
