//! Client ids of the application: `deviceID@AppID`, at most 64 characters.

/// Longest client id Easemob accepts (`deviceID@AppID`).
pub const MAX_CLIENT_ID_LEN: usize = 64;

/// An AppID: 6 lowercase letters or digits.
/// The tenant prefix the application's clients are routed under: they exchange
/// messages with each other (and the REST publish) only. It starts with `$`, so no
/// other client's wildcard reaches it, and the broker refuses other `$` filters.
pub fn tenant_mountpoint(app_id: &str) -> String {
    format!("$easemob/{app_id}/")
}

pub fn is_app_id(text: &str) -> bool {
    text.len() == 6
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// How a client id relates to this application.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientIdCheck {
    /// `deviceID@<our AppID>`, at most 64 characters.
    Ours,
    /// Well-formed, for another AppID.
    OtherApp,
    /// Not `deviceID@AppID`, or too long.
    Invalid,
}

pub fn check_client_id(client_id: &str, app_id: &str) -> ClientIdCheck {
    let Some((device, app)) = client_id.rsplit_once('@') else {
        return ClientIdCheck::Invalid;
    };
    if device.is_empty() || client_id.len() > MAX_CLIENT_ID_LEN || !is_app_id(app) {
        return ClientIdCheck::Invalid;
    }
    if app == app_id {
        ClientIdCheck::Ours
    } else {
        ClientIdCheck::OtherApp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids() {
        assert_eq!(
            check_client_id("dev1@ab12cd", "ab12cd"),
            ClientIdCheck::Ours
        );
        assert_eq!(check_client_id("a@b@ab12cd", "ab12cd"), ClientIdCheck::Ours);
        assert_eq!(
            check_client_id("dev1@zz99zz", "ab12cd"),
            ClientIdCheck::OtherApp
        );
        assert_eq!(check_client_id("dev1", "ab12cd"), ClientIdCheck::Invalid);
        assert_eq!(check_client_id("@ab12cd", "ab12cd"), ClientIdCheck::Invalid);
        assert_eq!(
            check_client_id("dev1@AB12CD", "ab12cd"),
            ClientIdCheck::Invalid
        );
        assert_eq!(
            check_client_id("dev1@ab12c", "ab12cd"),
            ClientIdCheck::Invalid
        );
        let longest = format!("{}@ab12cd", "d".repeat(57));
        assert_eq!(longest.len(), 64);
        assert_eq!(check_client_id(&longest, "ab12cd"), ClientIdCheck::Ours);
        let too_long = format!("{}@ab12cd", "d".repeat(58));
        assert_eq!(check_client_id(&too_long, "ab12cd"), ClientIdCheck::Invalid);
    }
}
