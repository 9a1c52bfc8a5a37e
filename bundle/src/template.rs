//! Path templates (`/pets/{id}`, `/files/{name}.{ext}`, `/static/{path+}`): the one
//! rule for what a template may be, parsed into segments the gateway's router
//! builds its trie from. `mgw validate` and the bundle check call the same rule,
//! so a template (or base path) that validates is one the router accepts.

use std::ops::Range;

use http::Method;

/// Most segments a template may have. It bounds the lookup's recursion depth, and
/// lets the set of depths at which routes end below a node fit in a `u128`.
pub const MAX_SEGMENTS: usize = 127;

/// A template or route the router cannot accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("path template `{template}` must start with `/`")]
    NoLeadingSlash { template: String },
    #[error("path template `{template}` has an empty segment before its end (`//`)")]
    EmptySegment { template: String },
    #[error("path template `{template}` has a dot segment `{segment}`, which no request can match")]
    DotSegment { template: String, segment: String },
    #[error("path template `{template}` has an unbalanced `{{` or `}}` in segment `{segment}`")]
    UnbalancedBrace { template: String, segment: String },
    #[error("path template `{template}` has an empty parameter name in segment `{segment}`")]
    EmptyParamName { template: String, segment: String },
    #[error(
        "path template `{template}` has two parameters with nothing between them in segment `{segment}`"
    )]
    AdjacentParams { template: String, segment: String },
    #[error(
        "path template `{template}`: the catch-all parameter `{segment}` must be the last segment"
    )]
    CatchAllNotLast { template: String, segment: String },
    #[error("path template `{template}` uses parameter `{name}` twice")]
    DuplicateParam { template: String, name: String },
    #[error("path template `{template}` has {count} segments, more than the limit of {max}")]
    TooManySegments {
        template: String,
        count: usize,
        max: usize,
    },
    #[error("route `{method} {template}` duplicates route `{method} {existing}`")]
    Duplicate {
        method: Method,
        template: String,
        existing: String,
    },
    #[error(
        "route `{template}` does not fit: the route table would pass 4 billion segments or bytes"
    )]
    TooManyRoutes { template: String },
}

/// Why a request path was refused before routing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("request path does not start with `/`")]
    NotAbsolute,
    #[error("request path has an invalid percent escape")]
    BadEscape,
    #[error("request path has a `.` or `..` segment")]
    DotSegment,
}

// ---------------------------------------------------------------------------
// Segments
// ---------------------------------------------------------------------------

/// A mixed segment such as `{name}.{ext}` or `v{version}`, names erased:
/// `prefix {p0} seps[0] {p1} ... {pn} suffix`. Every separator is non-empty.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pattern {
    pub prefix: Box<[u8]>,
    pub seps: Box<[Box<[u8]>]>,
    pub suffix: Box<[u8]>,
}

impl Pattern {
    pub fn literal_len(&self) -> usize {
        self.prefix.len() + self.suffix.len() + self.seps.iter().map(|s| s.len()).sum::<usize>()
    }

    pub fn matches(&self, segment: &[u8]) -> bool {
        self.split(segment, |_| {})
    }

    /// Splits a decoded segment into parameter values, reporting their byte ranges
    /// right to left. Each separator is taken at its last occurrence and never
    /// reconsidered, so the cost is linear in the segment and nothing backtracks.
    pub fn split(&self, s: &[u8], mut emit: impl FnMut(Range<usize>)) -> bool {
        if s.len() < self.prefix.len() + self.suffix.len()
            || !s.starts_with(&self.prefix)
            || !s.ends_with(&self.suffix)
        {
            return false;
        }
        let start = self.prefix.len();
        let mut end = s.len() - self.suffix.len();
        for sep in self.seps.iter().rev() {
            let Some(at) = s.get(start..end).and_then(|h| rfind(h, sep)) else {
                return false;
            };
            let value_start = start + at + sep.len();
            if value_start >= end {
                return false;
            }
            emit(value_start..end);
            end = start + at;
        }
        if start >= end {
            return false;
        }
        emit(start..end);
        true
    }
}

fn rfind(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || needle.len() > haystack.len() {
        return None;
    }
    haystack.windows(needle.len()).rposition(|w| w == needle)
}

/// One parsed template segment.
#[derive(Debug)]
pub enum SegmentSpec {
    Literal(Box<[u8]>),
    Param,
    Pattern(Pattern),
    /// `{name+}`: the rest of the path, one or more segments.
    CatchAll,
}

/// A template split into segments, with its parameter names in order.
#[derive(Debug)]
pub struct ParsedTemplate {
    pub segments: Vec<SegmentSpec>,
    pub names: Vec<Box<str>>,
}

/// Checks a path template by the rules the gateway's router applies at start, so the
/// bundle validation (and through it `mgw validate`) refuses what the router would
/// refuse at start.
pub fn check_template(template: &str) -> Result<(), RouteError> {
    parse_template(template).map(|_| ())
}

pub fn parse_template(template: &str) -> Result<ParsedTemplate, RouteError> {
    let Some(rest) = template.strip_prefix('/') else {
        return Err(RouteError::NoLeadingSlash {
            template: template.to_owned(),
        });
    };
    let count = rest.split('/').count();
    if count > MAX_SEGMENTS {
        return Err(RouteError::TooManySegments {
            template: template.to_owned(),
            count,
            max: MAX_SEGMENTS,
        });
    }
    let mut parsed = ParsedTemplate {
        segments: Vec::with_capacity(count),
        names: Vec::new(),
    };
    for (i, segment) in rest.split('/').enumerate() {
        if segment.is_empty() && i + 1 < count {
            return Err(RouteError::EmptySegment {
                template: template.to_owned(),
            });
        }
        let spec = parse_segment(template, segment, &mut parsed.names)?;
        if matches!(spec, SegmentSpec::CatchAll) && i + 1 < count {
            return Err(RouteError::CatchAllNotLast {
                template: template.to_owned(),
                segment: segment.to_owned(),
            });
        }
        parsed.segments.push(spec);
    }
    Ok(parsed)
}

fn parse_segment(
    template: &str,
    segment: &str,
    names: &mut Vec<Box<str>>,
) -> Result<SegmentSpec, RouteError> {
    let err_segment = || segment.to_owned();
    if !segment.contains(['{', '}']) {
        // `%2e%2E` too: request paths with such a segment are refused before
        // routing, so the route could never match.
        if check_segment(segment) == Err(PathError::DotSegment) {
            return Err(RouteError::DotSegment {
                template: template.to_owned(),
                segment: err_segment(),
            });
        }
        return Ok(SegmentSpec::Literal(segment.as_bytes().into()));
    }
    let catch_all = segment
        .strip_prefix('{')
        .and_then(|s| s.strip_suffix("+}"))
        .filter(|name| !name.is_empty() && !name.contains(['{', '}']));
    if let Some(name) = catch_all {
        if names.iter().any(|n| &**n == name) {
            return Err(RouteError::DuplicateParam {
                template: template.to_owned(),
                name: name.to_owned(),
            });
        }
        names.push(name.into());
        return Ok(SegmentSpec::CatchAll);
    }
    // Alternating literals and parameters: lits[0] {p} lits[1] {p} ... lits[n].
    let mut lits: Vec<&str> = Vec::new();
    let mut rest = segment;
    loop {
        let open = rest.find('{');
        let close = rest.find('}');
        match (open, close) {
            (None, None) => {
                lits.push(rest);
                break;
            }
            (Some(o), Some(c)) if o < c => {
                let name = &rest[o + 1..c];
                if name.contains('{') {
                    return Err(RouteError::UnbalancedBrace {
                        template: template.to_owned(),
                        segment: err_segment(),
                    });
                }
                if name.is_empty() {
                    return Err(RouteError::EmptyParamName {
                        template: template.to_owned(),
                        segment: err_segment(),
                    });
                }
                let literal = &rest[..o];
                if literal.is_empty() && !lits.is_empty() {
                    return Err(RouteError::AdjacentParams {
                        template: template.to_owned(),
                        segment: err_segment(),
                    });
                }
                if names.iter().any(|n| &**n == name) {
                    return Err(RouteError::DuplicateParam {
                        template: template.to_owned(),
                        name: name.to_owned(),
                    });
                }
                names.push(name.into());
                lits.push(literal);
                rest = &rest[c + 1..];
            }
            _ => {
                return Err(RouteError::UnbalancedBrace {
                    template: template.to_owned(),
                    segment: err_segment(),
                });
            }
        }
    }
    // `lits` has one more entry than there are parameters, and at least one
    // parameter was read (the segment contains a brace and parsed without error).
    let (Some((prefix, middle)), Some(suffix)) = (lits.split_first(), lits.last()) else {
        return Err(RouteError::UnbalancedBrace {
            template: template.to_owned(),
            segment: err_segment(),
        });
    };
    let seps = middle.get(..middle.len().saturating_sub(1)).unwrap_or(&[]);
    if lits.len() == 2 && prefix.is_empty() && suffix.is_empty() {
        return Ok(SegmentSpec::Param);
    }
    Ok(SegmentSpec::Pattern(Pattern {
        prefix: prefix.as_bytes().into(),
        seps: seps.iter().map(|s| s.as_bytes().into()).collect(),
        suffix: suffix.as_bytes().into(),
    }))
}

/// Rejects invalid escapes and segments that decode to `.` or `..`.
pub fn check_segment(segment: &str) -> Result<(), PathError> {
    let bytes = segment.as_bytes();
    let mut i = 0;
    let mut decoded_len = 0usize;
    let mut all_dots = true;
    while let Some(&b) = bytes.get(i) {
        let byte = if b == b'%' {
            let hi = bytes.get(i + 1).and_then(|&h| hex(h));
            let lo = bytes.get(i + 2).and_then(|&l| hex(l));
            let (Some(hi), Some(lo)) = (hi, lo) else {
                return Err(PathError::BadEscape);
            };
            i += 3;
            hi << 4 | lo
        } else {
            i += 1;
            b
        };
        decoded_len += 1;
        all_dots &= byte == b'.';
    }
    if all_dots && (decoded_len == 1 || decoded_len == 2) {
        return Err(PathError::DotSegment);
    }
    Ok(())
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}
