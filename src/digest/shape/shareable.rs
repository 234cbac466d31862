//! Whether a template may be rendered once for many recipients: its
//! personal values ([`super::Personal`]) must reach the output only as they
//! are, or as the condition of an `if`/`unless`, never a helper that looks
//! at them (`eq`, `truncate`, `lookup`…), where a placeholder would give
//! another result than the value.
//!
//! Conservative by design: a path that names a personal value anywhere
//! (`recipient`, `unsubscribe_url`), or that could be the whole context
//! (`this`, `..`, `@root`), given to anything but output or a condition,
//! makes the template unshareable; such a template is rendered for each
//! recipient, as before.

use handlebars::Path;
use handlebars::template::{HelperTemplate, Parameter, Template, TemplateElement};

/// Whether `template` is shareable (see the module).
pub fn shareable(template: &Template) -> bool {
    template.elements.iter().all(element)
}

fn element(element: &TemplateElement) -> bool {
    match element {
        TemplateElement::RawString(_) | TemplateElement::Comment(_) => true,
        TemplateElement::Expression(h) | TemplateElement::HtmlExpression(h) => {
            if h.params.is_empty()
                && h.hash.is_empty()
                && !matches!(h.name, Parameter::Subexpression(_))
            {
                // `{{value}}`: output as it is (escaped or not).
                return true;
            }
            call(h)
        }
        TemplateElement::HelperBlock(h) => {
            let name = h.name.as_name().unwrap_or_default();
            let head = match name {
                // A condition: only its truth counts, and a placeholder is
                // true exactly when the value is (empty values are not
                // placeholders).
                "if" | "unless" if h.params.len() == 1 => {
                    h.hash.values().all(argument)
                        && match &h.params[0] {
                            Parameter::Subexpression(s) => subexpression(s),
                            _ => true,
                        }
                }
                _ => call(h),
            };
            head && h.template.iter().chain(h.inverse.iter()).all(shareable)
        }
        TemplateElement::DecoratorExpression(d)
        | TemplateElement::DecoratorBlock(d)
        | TemplateElement::PartialExpression(d)
        | TemplateElement::PartialBlock(d) => {
            let name = match &d.name {
                Parameter::Subexpression(s) => subexpression(s),
                _ => true,
            };
            name && d.params.iter().chain(d.hash.values()).all(argument)
                && d.template.iter().all(shareable)
        }
        // Anything newer: not known to be harmless.
        _ => false,
    }
}

/// A helper given arguments (or a block helper other than a condition):
/// no argument may be personal.
fn call(h: &HelperTemplate) -> bool {
    let name = match &h.name {
        Parameter::Subexpression(s) => subexpression(s),
        _ => true,
    };
    name && h.params.iter().chain(h.hash.values()).all(argument)
}

fn subexpression(s: &handlebars::template::Subexpression) -> bool {
    match s.as_element() {
        TemplateElement::Expression(h) => call(h),
        other => element(other),
    }
}

/// An argument of a helper, a partial or a block helper like `each`.
fn argument(parameter: &Parameter) -> bool {
    match parameter {
        Parameter::Literal(_) => true,
        Parameter::Subexpression(s) => subexpression(s),
        Parameter::Name(name) => impersonal(name),
        Parameter::Path(path) => impersonal(raw(path)),
        _ => false,
    }
}

fn raw(path: &Path) -> &str {
    match path {
        Path::Relative((_, raw)) | Path::Local((_, _, raw)) => raw,
    }
}

/// A path that names no personal value and is not the whole context.
fn impersonal(path: &str) -> bool {
    const PERSONAL: [&str; 2] = ["recipient", "unsubscribe_url"];
    if PERSONAL.iter().any(|p| path.contains(p)) {
        return false;
    }
    // `this`, `.`, `..`, `../..`, `@root`: a whole context.
    !path
        .split(['/', '.'])
        .all(|s| s.is_empty() || s == "this" || s == "@root")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(source: &str) -> bool {
        shareable(&Template::compile(source).expect("compiles"))
    }

    #[test]
    fn personal_values_as_text_or_condition_are_shareable() {
        for source in [
            "Hello {{recipient.name}} <{{recipient.email}}>",
            "{{#if recipient.name}}Hi {{recipient.name}},{{else}}Hi,{{/if}}",
            "{{#unless unsubscribe_url}}-{{else}}<a href=\"{{unsubscribe_url}}\">x</a>{{/unless}}",
            "{{{unsubscribe_url}}} {{@root.recipient.email}}",
            "{{#each sections}}{{title}} {{../recipient.name}}{{#each items}}{{truncate summary 20}}{{/each}}{{/each}}",
            "{{#if (eq item_count 1)}}one{{/if}} {{format_date published \"%Y\"}}",
            "{{#*inline \"f\"}}{{recipient.name}}{{/inline}}{{> f}}",
            "{{#each sections as |s|}}{{s.title}}{{/each}}",
        ] {
            assert!(check(source), "{source}");
        }
    }

    #[test]
    fn personal_values_a_helper_looks_at_are_not() {
        for source in [
            "{{#if (eq recipient.name \"Li\")}}x{{/if}}",
            "{{truncate recipient.name 3}}",
            "{{#with recipient}}{{name}}{{/with}}",
            "{{#each recipient}}{{this}}{{/each}}",
            "{{#each this}}{{#each this}}{{len this}}{{/each}}{{/each}}",
            "{{lookup @root \"recipient\"}}",
            "{{#with (lookup this \"recipient\")}}{{name}}{{/with}}",
            "{{> f name=recipient.name}}",
            "{{#each sections}}{{> f ../this}}{{/each}}",
            "{{> f this}}",
            "{{#each sections}}{{#with ../this}}{{len recipient}}{{/with}}{{/each}}",
            "{{#if recipient.name includeZero=unsubscribe_url}}x{{/if}}",
            "{{len unsubscribe_url}}",
            "{{#if a}}x{{else if (eq recipient.name \"Li\")}}y{{/if}}",
            "{{#if a}}x{{else with recipient}}{{name}}{{/if}}",
        ] {
            assert!(!check(source), "{source}");
        }
    }
}
