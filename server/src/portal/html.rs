//! The portal's HTML: one layout, escaped text, and the form controls the pages are made of.
//! Every input has a `<label>`, every action is a `<button>`, and a field's error is shown
//! under it (and named by `aria-describedby`), so the pages work without JavaScript and with
//! a screen reader.

use std::fmt::Write as _;

/// Text made safe to place in HTML content or a quoted attribute.
pub(super) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole page: the title, a sign-out link when someone is signed in, and the body.
pub(super) fn page(title: &str, signed_in: Option<&str>, body: &str) -> String {
    let nav = match signed_in {
        Some(href) => format!(
            r#"<nav><a href="/">Ana Sayfa</a> · <a href="{}">Çıkış</a></nav>"#,
            esc(href)
        ),
        None => r#"<nav><a href="/">Ana Sayfa</a></nav>"#.to_owned(),
    };
    format!(
        r#"<!DOCTYPE html>
<html lang="tr"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} — nesca</title>
<style>body{{font-family:sans-serif;max-width:48rem;margin:1rem auto;padding:0 1rem;line-height:1.5}}
label{{display:block;margin-top:.8rem;font-weight:bold}}input,select{{font-size:1rem;padding:.3rem}}
input[type=text],input[type=password]{{width:100%;max-width:30rem;box-sizing:border-box}}
button{{font-size:1rem;margin:.6rem .4rem 0 0;padding:.3rem .8rem}}.hata{{color:#a00;margin:.2rem 0}}
.bilgi{{background:#eef;padding:.5rem}}table{{border-collapse:collapse;width:100%}}
td,th{{border:1px solid #999;padding:.3rem;text-align:left;vertical-align:top}}td form,td .dugmeler{{display:inline}}
.check label{{display:inline;font-weight:normal}}</style></head>
<body><header><strong>nesca</strong> · Nitelikli Elektronik Sertifika</header>{nav}<main><h1>{title}</h1>
{body}</main></body></html>
"#,
        title = esc(title),
    )
}

/// A form posting to `action`, holding the CSRF token and `fields`, ended by `buttons`.
pub(super) fn form(action: &str, csrf: &str, fields: &str, buttons: &str) -> String {
    format!(
        r#"<form method="post" action="{}"><input type="hidden" name="csrf" value="{}">{fields}<div class="dugmeler">{buttons}</div></form>"#,
        esc(action),
        esc(csrf)
    )
}

/// A button submitting its form (with `name=value` when given).
pub(super) fn button(text: &str, name_value: Option<(&str, &str)>) -> String {
    match name_value {
        Some((n, v)) => format!(
            r#"<button type="submit" name="{}" value="{}">{}</button>"#,
            esc(n),
            esc(v),
            esc(text)
        ),
        None => format!(r#"<button type="submit">{}</button>"#, esc(text)),
    }
}

/// One labelled input: `kind` is its type (`text`, `password`), `error` the message shown
/// under it.
pub(super) fn input(
    name: &str,
    label: &str,
    kind: &str,
    attrs: &str,
    error: Option<&str>,
) -> String {
    let mut s = format!(r#"<label for="{name}">{}</label>"#, esc(label));
    let described = if error.is_some() {
        format!(r#" aria-invalid="true" aria-describedby="{name}-hata""#)
    } else {
        String::new()
    };
    let _ = write!(
        s,
        r#"<input id="{name}" name="{name}" type="{kind}" {attrs}{described}>"#
    );
    if let Some(e) = error {
        let _ = write!(s, r#"<p class="hata" id="{name}-hata">{}</p>"#, esc(e));
    }
    s
}

/// A sign-in form: the refusal on top (the same for every reason), then `T.C. Kimlik No` (kept
/// as typed) and the secret (`name`, `label`), and the button.
pub(super) fn sign_in_form(
    (action, csrf): (&str, &str),
    tckn: &str,
    (secret_name, secret_label): (&str, &str),
    button_text: &str,
    refusal: Option<&str>,
) -> String {
    let mut body = refusal.map(alert).unwrap_or_default();
    body.push_str(&form(
        action,
        csrf,
        &format!(
            "{}{}",
            input(
                "tckn",
                "T.C. Kimlik No",
                "text",
                &format!(
                    r#"inputmode="numeric" autocomplete="username" maxlength="11" required value="{}""#,
                    esc(tckn)
                ),
                refusal.map(|_| "Bilgilerinizi kontrol edin."),
            ),
            input(
                secret_name,
                secret_label,
                "password",
                r#"autocomplete="current-password" maxlength="64" required"#,
                None,
            ),
        ),
        &button(button_text, None),
    ));
    body
}

/// A labelled checkbox.
pub(super) fn checkbox(name: &str, label: &str) -> String {
    format!(
        r#"<p class="check"><input id="{name}" name="{name}" type="checkbox" value="1"> <label for="{name}">{}</label></p>"#,
        esc(label)
    )
}

/// A labelled select of `(value, text)` options.
pub(super) fn select(name: &str, label: &str, options: &[(&str, &str)]) -> String {
    let mut s = format!(
        r#"<label for="{name}">{}</label><select id="{name}" name="{name}">"#,
        esc(label)
    );
    for (v, t) in options {
        let _ = write!(s, r#"<option value="{}">{}</option>"#, esc(v), esc(t));
    }
    s.push_str("</select>");
    s
}

/// A message for the whole page (`role=alert` so that it is read out).
pub(super) fn alert(text: &str) -> String {
    format!(r#"<p class="hata" role="alert">{}</p>"#, esc(text))
}

/// A notice that something was done.
pub(super) fn notice(text: &str) -> String {
    format!(r#"<p class="bilgi" role="status">{}</p>"#, esc(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_cannot_leave_its_element_or_attribute() {
        assert_eq!(
            esc(r#"<script>"a"&'b'</script>"#),
            "&lt;script&gt;&quot;a&quot;&amp;&#39;b&#39;&lt;/script&gt;"
        );
        let p = page("<x>", None, "");
        assert!(p.contains("<title>&lt;x&gt; — nesca</title>"));
    }

    #[test]
    fn every_input_has_its_label_and_its_error_next_to_it() {
        let i = input("tckn", "T.C. Kimlik No", "text", "", Some("hatalı"));
        assert!(i.contains(r#"<label for="tckn">T.C. Kimlik No</label>"#));
        assert!(i.contains(r#"aria-describedby="tckn-hata""#));
        assert!(i.contains(r#"<p class="hata" id="tckn-hata">hatalı</p>"#));
    }
}
