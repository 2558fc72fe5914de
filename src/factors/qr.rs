//! QR codes drawn on the server as inline SVG: no image service ever sees an enrolment secret,
//! and the page needs no script.

use std::fmt::Write;

use qrcode::{Color, EcLevel, QrCode};

/// Modules of white around the code, as ISO/IEC 18004 asks, so that cameras find its edges.
const QUIET_ZONE: usize = 4;

/// `text` as an SVG QR code (error correction M), one path for the dark modules, scaled by
/// the page's style sheet. Hidden from screen readers: the page describes it in words and
/// shows the same secret as text. `None` only when the text is too long for a QR code.
pub fn svg(text: &str) -> Option<String> {
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M).ok()?;
    let width = code.width();
    let size = width + 2 * QUIET_ZONE;
    let mut path = String::new();
    for (i, color) in code.to_colors().iter().enumerate() {
        if *color == Color::Dark {
            let (x, y) = (i % width + QUIET_ZONE, i / width + QUIET_ZONE);
            let _ = write!(path, "M{x} {y}h1v1h-1z");
        }
    }
    Some(format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {size} {size}\" \
         class=\"qr\" aria-hidden=\"true\" focusable=\"false\" shape-rendering=\"crispEdges\">\
         <rect width=\"{size}\" height=\"{size}\" fill=\"#fff\"/>\
         <path fill=\"#000\" d=\"{path}\"/></svg>"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_a_square_svg_with_dark_modules_and_nothing_of_the_text() {
        let text = "otpauth://totp/AK00:anna%40example.ch?secret=JBSWY3DPEHPK3PXP";
        let svg = svg(text).expect("fits");
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 "));
        assert!(
            svg.contains("M4 4h1v1h-1z"),
            "the finder pattern's corner is dark"
        );
        assert!(!svg.contains("JBSWY3DP") && !svg.contains("<script"));
        assert!(svg.ends_with("</svg>"));
    }

    #[test]
    fn a_text_too_long_for_any_qr_code_gives_none() {
        assert!(svg(&"x".repeat(5000)).is_none());
    }
}
