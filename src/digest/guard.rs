//! Templates that cannot exhaust the stack.
//!
//! Handlebars renders (and partly parses and compiles) a template by
//! recursion: every block, subexpression and partial adds stack frames, and a
//! partial that includes itself never stops. A thread that runs out of stack
//! aborts the whole process, so `check`, a dry run or a send would die with
//! SIGABRT instead of naming the mistake. This module refuses such templates
//! when they are loaded, with the file, line and column:
//!
//! - [`nesting`] scans the text before handlebars sees it: blocks
//!   (`{{#…}}`, each `{{else …}}` of a chain), subexpressions and literal
//!   arrays or objects nested more than [`MAX_DEPTH`] levels deep. It counts
//!   generously (an escaped or commented tag counts too): it only has to
//!   bound what the parser will meet.
//! - [`partials`] walks the compiled template: a partial whose name is
//!   computed while rendering (`{{> (lookup …)}}`), a partial that is not
//!   defined, one of the digest templates used as a partial (they cannot
//!   include each other), a partial that includes itself directly or through
//!   others, and nesting deeper than [`MAX_DEPTH`] once the partials a
//!   template includes are counted where they are included.
//!
//! [`MAX_DEPTH`] leaves a composing thread's stack (2 MB) several times the
//! room the deepest accepted template needs, in debug builds too.

use std::collections::HashMap;

use handlebars::template::{Parameter, Template, TemplateElement};
use serde_json::Value;

/// Blocks, subexpressions and included partials nested deeper than this are
/// refused. Real digest templates nest a handful of levels.
pub(super) const MAX_DEPTH: usize = 100;

/// One problem, at a 1-based line and column (in characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Finding {
    pub line: usize,
    pub col: usize,
    pub message: String,
}

fn too_deep(line: usize, col: usize) -> Finding {
    Finding {
        line,
        col,
        message: format!(
            "template nesting: blocks, partials and subexpressions are nested more than \
             {MAX_DEPTH} levels deep here (deeper could exhaust the stack while rendering)"
        ),
    }
}

/// The first place where `source` nests deeper than [`MAX_DEPTH`], found
/// without parsing it.
pub(super) fn nesting(source: &str) -> Option<Finding> {
    let bytes = source.as_bytes();
    let at = |offset: usize| {
        let (line, col) = crate::diag::line_col(source, offset);
        too_deep(line, col)
    };
    // Per open block, the levels it adds: 1, plus one per `{{else …}}`
    // chained to it.
    let mut blocks: Vec<usize> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i + 1 < bytes.len() {
        if bytes[i] != b'{' || bytes[i + 1] != b'{' {
            i += 1;
            continue;
        }
        let start = i;
        i += 2;
        while i < bytes.len() && matches!(bytes[i], b'{' | b'~' | b' ' | b'\t' | b'\r' | b'\n') {
            i += 1;
        }
        let chained = match bytes.get(i) {
            Some(b'#') => {
                if depth + 1 > MAX_DEPTH {
                    return Some(at(start));
                }
                depth += 1;
                blocks.push(1);
                false
            }
            Some(b'/') => {
                depth -= blocks.pop().unwrap_or(0).min(depth);
                false
            }
            // `{{^name}}` and `{{else name}}` chain to the open block;
            // `{{^}}` and `{{else}}` do not nest.
            Some(b'^') => bytes.get(i + 1).is_some_and(|b| !b"}~ \t\r\n".contains(b)),
            Some(b'e') => {
                bytes[i..].starts_with(b"else")
                    && bytes.get(i + 4).is_some_and(|b| b" \t\r\n".contains(b))
                    && bytes[i + 4..]
                        .iter()
                        .find(|b| !b" \t\r\n".contains(b))
                        .is_some_and(|b| !b"}~".contains(b))
            }
            _ => false,
        };
        if chained && chain(&mut blocks, &mut depth) {
            return Some(at(start));
        }
        // Inside the tag, up to its `}}`: subexpressions and literals.
        let mut inner = 0usize;
        while i < bytes.len()
            && !(bytes[i] == b'}' && bytes.get(i + 1) == Some(&b'}') && inner == 0)
        {
            match bytes[i] {
                b'(' | b'[' | b'{' => {
                    inner += 1;
                    if depth + inner > MAX_DEPTH {
                        return Some(at(i));
                    }
                }
                b')' | b']' | b'}' => inner = inner.saturating_sub(1),
                b'"' | b'\'' => {
                    // A string literal: brackets in it do not nest.
                    let quote = bytes[i];
                    i += 1;
                    while i < bytes.len() && bytes[i] != quote {
                        if bytes[i] == b'\\' {
                            i += 1;
                        }
                        i += 1;
                    }
                }
                _ => {}
            }
            i += 1;
        }
    }
    None
}

/// An `{{else …}}` chained to the innermost open block; true when that
/// nests too deep.
fn chain(blocks: &mut [usize], depth: &mut usize) -> bool {
    let Some(levels) = blocks.last_mut() else {
        return false;
    };
    if *depth + 1 > MAX_DEPTH {
        return true;
    }
    *levels += 1;
    *depth += 1;
    false
}

/// What a template's partials and nesting allow, or the problems found:
/// `registered` are the names of the templates themselves (never partials).
pub(super) fn partials(template: &Template, registered: &[&str]) -> Vec<Finding> {
    let mut graph = Graph {
        root: Some(template),
        ..Graph::default()
    };
    // Node 0 is the template itself.
    graph.nodes.push(Node::default());
    collect(template, 0, &mut graph, (1, 1), 0);
    let mut findings = std::mem::take(&mut graph.findings);
    for node in &graph.nodes {
        for call in &node.calls {
            let known = graph.by_name.contains_key(call.name.as_str());
            if known || call.name == "@partial-block" {
                continue;
            }
            let message = if registered.contains(&call.name.as_str()) {
                format!(
                    "template partial: \"{}\" is not a partial: the digest templates cannot \
                     include each other (define shared parts with {{{{#*inline \"name\"}}}})",
                    call.name
                )
            } else if call.block {
                continue; // `{{#> name}}fallback{{/name}}` renders the fallback.
            } else {
                format!(
                    "template partial: partial \"{}\" is not defined (define it with \
                     {{{{#*inline \"{}\"}}}}…{{{{/inline}}}})",
                    call.name, call.name
                )
            };
            findings.push(Finding {
                line: call.at.0,
                col: call.at.1,
                message,
            });
        }
    }
    if !findings.is_empty() {
        return findings;
    }
    match graph.order() {
        Ok(order) => graph.depth(&order).into_iter().collect(),
        Err(cycle) => vec![cycle],
    }
}

#[derive(Default)]
struct Graph<'t> {
    root: Option<&'t Template>,
    nodes: Vec<Node<'t>>,
    /// Inline partials by name (a name defined twice is one node).
    by_name: HashMap<&'t str, usize>,
    findings: Vec<Finding>,
}

#[derive(Default)]
struct Node<'t> {
    name: String,
    /// The templates that make up its body (one per definition).
    bodies: Vec<&'t Template>,
    calls: Vec<Call>,
}

struct Call {
    name: String,
    /// `{{#> name}}…{{/name}}`, which has a fallback.
    block: bool,
    at: (usize, usize),
}

/// Records the inline partials `template` defines (at any depth) and the
/// partials each body calls, for the node `owner`. `level` is the nesting
/// of `template` in the text.
fn collect<'t>(
    template: &'t Template,
    owner: usize,
    graph: &mut Graph<'t>,
    at: (usize, usize),
    level: usize,
) {
    if level > MAX_DEPTH {
        // Only when the text scan was outwitted: the nesting is the problem.
        if !graph
            .findings
            .iter()
            .any(|f| f.message.starts_with("template nesting"))
        {
            graph.findings.push(too_deep(at.0, at.1));
        }
        return;
    }
    let level = level + 1;
    for (index, element) in template.elements.iter().enumerate() {
        let here = template.mapping.get(index).map_or(at, |m| (m.0, m.1));
        match element {
            TemplateElement::HelperBlock(h) => {
                for t in h.template.iter().chain(h.inverse.iter()) {
                    collect(t, owner, graph, here, level);
                }
            }
            TemplateElement::DecoratorBlock(d) if d.name.as_name() == Some("inline") => {
                let Some(Parameter::Literal(Value::String(name))) = d.params.first() else {
                    graph.findings.push(Finding {
                        line: here.0,
                        col: here.1,
                        message: "template partial: an inline partial's name must be a string \
                                  literal ({{#*inline \"name\"}})"
                            .into(),
                    });
                    continue;
                };
                let node = *graph.by_name.entry(name.as_str()).or_insert_with(|| {
                    graph.nodes.push(Node {
                        name: name.clone(),
                        ..Node::default()
                    });
                    graph.nodes.len() - 1
                });
                if let Some(body) = &d.template {
                    graph.nodes[node].bodies.push(body);
                    collect(body, node, graph, here, level);
                }
            }
            TemplateElement::DecoratorBlock(d) => {
                if let Some(body) = &d.template {
                    collect(body, owner, graph, here, level);
                }
            }
            TemplateElement::PartialExpression(d) | TemplateElement::PartialBlock(d) => {
                let block = matches!(element, TemplateElement::PartialBlock(_));
                // A name or a path is used as written; anything else is
                // evaluated while rendering.
                match d.name.as_name() {
                    Some(name) => graph.nodes[owner].calls.push(Call {
                        name: name.to_owned(),
                        block,
                        at: here,
                    }),
                    None => graph.findings.push(Finding {
                        line: here.0,
                        col: here.1,
                        message: "template partial: a partial's name must be written out, not \
                                  computed while rendering ({{> name}}, not {{> (…)}}): a \
                                  computed name could make a partial include itself"
                            .into(),
                    }),
                }
                if let Some(body) = &d.template {
                    collect(body, owner, graph, here, level);
                }
            }
            _ => {}
        }
    }
}

impl Graph<'_> {
    /// The nodes, every callee before its callers; or a partial that
    /// includes itself, reported where the call that closes the loop is.
    fn order(&self) -> Result<Vec<usize>, Finding> {
        // 0: not seen, 1: on the path, 2: done. Iterative: a chain of
        // partials may be long.
        let mut state = vec![0u8; self.nodes.len()];
        let mut order = Vec::with_capacity(self.nodes.len());
        for start in 0..self.nodes.len() {
            if state[start] != 0 {
                continue;
            }
            // (node, index of its next call)
            let mut path: Vec<(usize, usize)> = vec![(start, 0)];
            state[start] = 1;
            while let Some(&mut (node, ref mut next_call)) = path.last_mut() {
                let Some(call) = self.nodes[node].calls.get(*next_call) else {
                    state[node] = 2;
                    order.push(node);
                    path.pop();
                    continue;
                };
                *next_call += 1;
                let Some(&next) = self.by_name.get(call.name.as_str()) else {
                    continue;
                };
                match state[next] {
                    0 => {
                        state[next] = 1;
                        path.push((next, 0));
                    }
                    1 => {
                        let from = path
                            .iter()
                            .position(|&(n, _)| n == next)
                            .expect("on the path");
                        let names: Vec<&str> = path[from..]
                            .iter()
                            .map(|&(n, _)| n)
                            .chain(std::iter::once(next))
                            .map(|n| self.nodes[n].name.as_str())
                            .collect();
                        return Err(Finding {
                            line: call.at.0,
                            col: call.at.1,
                            message: format!(
                                "template recursion: partial \"{}\" includes itself ({}); a \
                                 partial cannot include itself, directly or through others",
                                self.nodes[next].name,
                                names.join(" > ")
                            ),
                        });
                    }
                    _ => {}
                }
            }
        }
        Ok(order)
    }

    /// Nesting deeper than [`MAX_DEPTH`], each partial counted where it is
    /// included: the deepest level of every body is known before the bodies
    /// that include it are walked (`order`).
    fn depth(&self, order: &[usize]) -> Option<Finding> {
        let mut deepest = vec![0usize; self.nodes.len()];
        for &node in order {
            let bodies: Vec<&Template> = if node == 0 {
                self.root.into_iter().collect()
            } else {
                self.nodes[node].bodies.clone()
            };
            for body in bodies {
                match self.walk(body, 0, (1, 1), &deepest) {
                    Ok(d) => deepest[node] = deepest[node].max(d),
                    Err(found) => return Some(found),
                }
            }
        }
        None
    }

    /// The deepest level reached rendering `template` at `depth`, given the
    /// deepest level inside each partial's body.
    fn walk(
        &self,
        template: &Template,
        depth: usize,
        at: (usize, usize),
        partial_depth: &[usize],
    ) -> Result<usize, Finding> {
        let mut deepest = depth;
        for (index, element) in template.elements.iter().enumerate() {
            let here = template.mapping.get(index).map_or(at, |m| (m.0, m.1));
            let check = |d: usize| {
                if d > MAX_DEPTH {
                    Err(too_deep(here.0, here.1))
                } else {
                    Ok(d)
                }
            };
            let reached = match element {
                TemplateElement::Expression(h) | TemplateElement::HtmlExpression(h) => {
                    check(depth + expression_depth(&h.name, &h.params, h.hash.values()))?
                }
                TemplateElement::HelperBlock(h) => {
                    let mut d =
                        check(depth + expression_depth(&h.name, &h.params, h.hash.values()))?;
                    let inner = check(depth + 1)?;
                    for t in h.template.iter().chain(h.inverse.iter()) {
                        d = d.max(self.walk(t, inner, here, partial_depth)?);
                    }
                    d
                }
                TemplateElement::DecoratorExpression(dt) => {
                    check(depth + expression_depth(&dt.name, &dt.params, dt.hash.values()))?
                }
                TemplateElement::DecoratorBlock(dt) => {
                    let d =
                        check(depth + expression_depth(&dt.name, &dt.params, dt.hash.values()))?;
                    match &dt.template {
                        // An inline partial's body is rendered where it is
                        // included, and counted there.
                        Some(t) if dt.name.as_name() != Some("inline") => {
                            d.max(self.walk(t, check(depth + 1)?, here, partial_depth)?)
                        }
                        _ => d,
                    }
                }
                TemplateElement::PartialExpression(dt) | TemplateElement::PartialBlock(dt) => {
                    let mut d =
                        check(depth + expression_depth(&dt.name, &dt.params, dt.hash.values()))?;
                    let name = dt.name.as_name();
                    let mut inner = check(depth + 1)?;
                    if let Some(&callee) = name.and_then(|n| self.by_name.get(n)) {
                        // The block's content, if any, may be rendered
                        // inside the partial: count it at the partial's
                        // deepest level.
                        inner = check(depth + 1 + partial_depth[callee])?;
                        d = d.max(inner);
                    }
                    match &dt.template {
                        Some(t) => d.max(self.walk(t, inner, here, partial_depth)?),
                        None => d,
                    }
                }
                // Text, comments (and any element a later handlebars adds).
                _ => depth,
            };
            deepest = deepest.max(reached);
        }
        Ok(deepest)
    }
}

/// Levels of subexpressions in a tag's name, parameters and hash values.
fn expression_depth<'a>(
    name: &'a Parameter,
    params: &'a [Parameter],
    hash: impl Iterator<Item = &'a Parameter>,
) -> usize {
    std::iter::once(name)
        .chain(params)
        .chain(hash)
        .map(parameter_depth)
        .max()
        .unwrap_or(0)
}

fn parameter_depth(parameter: &Parameter) -> usize {
    match parameter {
        Parameter::Subexpression(sub) => match sub.as_element() {
            TemplateElement::Expression(h) => {
                // Bounded: the text scan refused deeper nesting.
                1 + expression_depth(&h.name, &h.params, h.hash.values()).min(MAX_DEPTH)
            }
            _ => 1,
        },
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compiled(source: &str) -> Vec<Finding> {
        assert_eq!(nesting(source), None, "{source}");
        let template = Template::compile(source).expect("compiles");
        partials(&template, &["html", "text", "subject"])
    }

    fn messages(source: &str) -> Vec<String> {
        compiled(source).into_iter().map(|f| f.message).collect()
    }

    #[test]
    fn nesting_counts_blocks_chains_and_subexpressions() {
        let blocks = |n: usize| format!("{}x{}", "{{#if a}}".repeat(n), "{{/if}}".repeat(n));
        assert_eq!(nesting(&blocks(MAX_DEPTH)), None);
        let found = nesting(&format!("ab\n{}", blocks(MAX_DEPTH + 1))).unwrap();
        assert_eq!((found.line, found.col), (2, 1 + 9 * MAX_DEPTH));
        // Closed blocks do not add up.
        assert_eq!(nesting(&blocks(60).repeat(10)), None);
        // Whitespace control and spaces before the `#`.
        let tilde = format!("{}x", "{{~ #if a}}".repeat(MAX_DEPTH + 1));
        assert!(nesting(&tilde).is_some());
        // Every `else if` of a chain nests one level deeper.
        let chain = format!(
            "{{{{#if a}}}}{}{{{{/if}}}}",
            "{{else if b}}".repeat(MAX_DEPTH)
        );
        assert!(nesting(&chain).is_some());
        let chain = format!(
            "{{{{#if a}}}}{}{{{{else}}}}{{{{/if}}}}",
            "{{else if b}}".repeat(98)
        );
        assert_eq!(nesting(&chain), None);
        let parens = |n: usize| format!("{{{{x {}y{}}}}}", "(f ".repeat(n), ")".repeat(n));
        assert_eq!(nesting(&parens(MAX_DEPTH)), None);
        assert!(nesting(&parens(MAX_DEPTH + 1)).is_some());
        let arrays = format!(
            "{{{{x {}{}}}}}",
            "[".repeat(MAX_DEPTH + 1),
            "]".repeat(MAX_DEPTH + 1)
        );
        assert!(nesting(&arrays).is_some());
        // Brackets in a string literal, or outside tags, do not nest.
        let quoted = format!("{{{{x \"{}\"}}}}{}", "(".repeat(500), "[(".repeat(500));
        assert_eq!(nesting(&quoted), None);
    }

    #[test]
    fn ordinary_partials_pass() {
        assert!(
            compiled(
                "{{#*inline \"a\"}}A{{/inline}}{{#*inline \"b\"}}{{> a}}{{/inline}}{{> b}}{{> a}}"
            )
            .is_empty()
        );
        // A partial block with a fallback needs no definition.
        assert!(compiled("{{#> maybe}}fallback{{/maybe}}").is_empty());
        assert!(
            compiled("{{#*inline \"p\"}}[{{> @partial-block}}]{{/inline}}{{#> p}}x{{/p}}")
                .is_empty()
        );
        // The built-in templates.
        for language in super::super::render::Language::ALL {
            let builtin = language.builtin();
            for source in [builtin.html, builtin.text] {
                assert!(compiled(source).is_empty());
            }
        }
    }

    #[test]
    fn recursion_is_found_with_its_path_and_place() {
        let found = compiled("{{#*inline \"x\"}}\n  {{> x}}{{/inline}}{{> x}}");
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].line, found[0].col), (2, 3));
        assert!(
            found[0]
                .message
                .contains("partial \"x\" includes itself (x > x)")
        );
        let mutual = messages(
            "{{#*inline \"a\"}}{{> b}}{{/inline}}{{#*inline \"b\"}}{{#each c}}{{#> a}}{{/a}}{{/each}}{{/inline}}{{> a}}",
        );
        assert!(
            mutual[0].contains("partial \"a\" includes itself (a > b > a)"),
            "{mutual:?}"
        );
        // Never called, still a mistake.
        let unused = messages("{{#*inline \"a\"}}{{> a}}{{/inline}}");
        assert!(unused[0].contains("(a > a)"));
    }

    #[test]
    fn computed_registered_and_unknown_partials_are_refused() {
        assert!(messages("{{> (lookup a \"b\")}}")[0].contains("must be written out"));
        assert!(messages("{{> text}}")[0].contains("\"text\" is not a partial"));
        assert!(
            messages("{{#> subject}}x{{/subject}}")[0].contains("\"subject\" is not a partial")
        );
        assert!(messages("{{> nowhere}}")[0].contains("partial \"nowhere\" is not defined"));
        assert!(messages("{{#*inline a}}x{{/inline}}")[0].contains("must be a string literal"));
    }

    #[test]
    fn partials_count_where_they_are_included() {
        let deep = |n: usize| format!("{}x{}", "{{#if a}}".repeat(n), "{{/if}}".repeat(n));
        let two = format!(
            "{{{{#*inline \"a\"}}}}{}{{{{/inline}}}}{{{{#*inline \"b\"}}}}{}{{{{> a}}}}{}{{{{/inline}}}}{{{{> b}}}}",
            deep(50),
            "{{#if a}}".repeat(50),
            "{{/if}}".repeat(50)
        );
        assert!(messages(&two)[0].starts_with("template nesting"));
        let fits = two.replace(&deep(50), &deep(48));
        assert!(compiled(&fits).is_empty());
    }
}
