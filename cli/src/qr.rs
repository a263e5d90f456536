//! QR codes drawn in the terminal with Unicode half blocks (two modules per character), so
//! a phone can scan a friend card or an invoice straight off the screen.

use qrcode::render::unicode::Dense1x2;
use qrcode::{EcLevel, QrCode};

/// Draws `text` as a QR code (error correction level M, with the quiet zone), light modules
/// as full blocks so it scans on a dark terminal. Fails only when the text is too long for
/// any QR code (over about 2,300 characters at level M).
pub fn render(text: &str) -> Result<String, String> {
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M)
        .map_err(|err| format!("cannot draw a QR code of {} characters: {err}", text.len()))?;
    Ok(code
        .render::<Dense1x2>()
        .dark_color(Dense1x2::Light)
        .light_color(Dense1x2::Dark)
        .quiet_zone(true)
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_card_sized_text_draws_a_square_code() {
        let text = format!("offst:F1{}", "A".repeat(120));
        let drawn = render(&text).unwrap();
        let lines: Vec<&str> = drawn.lines().collect();
        let width = lines[0].chars().count();
        assert!(width > 21, "{width}");
        // Two modules per line: a square code is about half as many lines as columns.
        assert!(lines.len() * 2 >= width && lines.len() * 2 <= width + 2);
        assert!(lines.iter().all(|line| line.chars().count() == width));
    }

    #[test]
    fn a_text_too_long_for_any_code_is_an_error() {
        assert!(render(&"x".repeat(5000)).is_err());
    }
}
