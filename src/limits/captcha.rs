//! CAPTCHA verification against a siteverify endpoint (Turnstile, hCaptcha and
//! reCAPTCHA share its shape: form POST of secret, response and remoteip;
//! JSON answer with `success` and `error-codes`).

use std::net::IpAddr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::config::{CaptchaProvider, CaptchaSettings};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Passed,
    Failed(Vec<String>),
    /// The verify endpoint could not be asked or did not answer sensibly.
    Unavailable(String),
}

pub struct Captcha {
    provider: CaptchaProvider,
    secret: SecretString,
    verify_url: String,
    /// One client for the process: its connection pool keeps the TCP (and TLS)
    /// connection to the verify endpoint open between submissions.
    agent: ureq::Agent,
}

#[derive(Deserialize)]
struct Answer {
    success: bool,
    #[serde(rename = "error-codes", default)]
    error_codes: Vec<String>,
}

impl Captcha {
    /// `None` when no provider is configured.
    pub fn new(settings: &CaptchaSettings) -> Option<Self> {
        let default_url = match settings.provider {
            CaptchaProvider::Disabled => return None,
            CaptchaProvider::Turnstile => "https://challenges.cloudflare.com/turnstile/v0/siteverify",
            CaptchaProvider::Hcaptcha => "https://api.hcaptcha.com/siteverify",
            CaptchaProvider::Recaptcha => "https://www.google.com/recaptcha/api/siteverify",
        };
        let verify_url =
            if settings.verify_url.is_empty() { default_url.to_owned() } else { settings.verify_url.clone() };
        Some(Self {
            provider: settings.provider,
            secret: settings.secret.clone(),
            verify_url,
            agent: ureq::AgentBuilder::new().timeout(Duration::from_secs(settings.timeout_seconds.max(1))).build(),
        })
    }

    /// The form field the provider's widget fills in.
    pub fn token_field(&self) -> &'static str {
        match self.provider {
            CaptchaProvider::Hcaptcha => "h-captcha-response",
            CaptchaProvider::Recaptcha => "g-recaptcha-response",
            CaptchaProvider::Turnstile | CaptchaProvider::Disabled => "cf-turnstile-response",
        }
    }

    pub async fn verify(&self, token: &str, remote_ip: IpAddr) -> Verdict {
        let url = self.verify_url.clone();
        let form = [
            ("secret", self.secret.expose_secret().to_owned()),
            ("response", token.to_owned()),
            ("remoteip", remote_ip.to_string()),
        ];
        let agent = self.agent.clone();
        tokio::task::spawn_blocking(move || {
            let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            match agent.post(&url).send_form(&pairs) {
                Ok(response) => match response.into_json::<Answer>() {
                    Ok(Answer { success: true, .. }) => Verdict::Passed,
                    Ok(Answer { error_codes, .. }) => Verdict::Failed(error_codes),
                    Err(e) => Verdict::Unavailable(format!("unreadable answer: {e}")),
                },
                Err(ureq::Error::Status(code, _)) => Verdict::Unavailable(format!("verify endpoint answered {code}")),
                Err(e) => Verdict::Unavailable(e.kind().to_string()),
            }
        })
        .await
        .unwrap_or_else(|e| Verdict::Unavailable(e.to_string()))
    }
}
