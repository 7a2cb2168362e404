//! One page of an S3 listing cut from a bucket's objects under a prefix (in
//! key order): keys after a marker, rolled up into common prefixes at a
//! delimiter, at most `max_keys` entries (objects and prefixes together).
//! ListObjects v1 and v2 and ListObjectVersions all page this way; v2's
//! continuation token is the last key or prefix of the page before, in
//! base64 so that no client takes it for a key.

use peercloud_client::bucket::ObjectItem;

/// Entries a page holds by default and at most (S3's bound).
pub const MAX_KEYS: usize = 1000;

/// One page of a listing.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Page<'a> {
    /// The objects, in key order.
    pub objects: Vec<&'a ObjectItem>,
    /// The common prefixes (each ends with the delimiter), in order.
    pub prefixes: Vec<String>,
    /// Whether entries are left after this page.
    pub truncated: bool,
    /// The last key or prefix of the page (where the next one starts after).
    pub last: Option<String>,
}

/// The page of `items` (every object under `prefix`, in key order) after
/// `after`, rolled up at `delimiter`, of at most `max_keys` entries.
pub fn page<'a>(
    items: &'a [ObjectItem],
    prefix: &str,
    delimiter: Option<&str>,
    after: Option<&str>,
    max_keys: usize,
) -> Page<'a> {
    let mut page = Page::default();
    let max_keys = max_keys.min(MAX_KEYS);
    let delimiter = delimiter.filter(|d| !d.is_empty());
    for item in items {
        let key = item.key.as_str();
        if !key.starts_with(prefix) || after.is_some_and(|a| key <= a) {
            continue;
        }
        let rolled = delimiter.and_then(|d| {
            let rest = &key[prefix.len()..];
            rest.find(d)
                .map(|at| format!("{prefix}{}", &rest[..at + d.len()]))
        });
        // A prefix already on the page (or the marker itself) is not listed again.
        if let Some(common) = &rolled
            && (page.prefixes.last() == Some(common) || after.is_some_and(|a| common.as_str() <= a))
        {
            continue;
        }
        if page.objects.len() + page.prefixes.len() == max_keys {
            page.truncated = true;
            break;
        }
        match rolled {
            Some(common) => {
                page.last = Some(common.clone());
                page.prefixes.push(common);
            }
            None => {
                page.last = Some(key.to_owned());
                page.objects.push(item);
            }
        }
    }
    page
}

/// A continuation token for the page after `last`.
pub fn token(last: &str) -> String {
    data_encoding::BASE64URL_NOPAD.encode(last.as_bytes())
}

/// The key a continuation token continues after, if it is one of ours.
pub fn after_token(token: &str) -> Option<String> {
    let bytes = data_encoding::BASE64URL_NOPAD
        .decode(token.as_bytes())
        .ok()?;
    String::from_utf8(bytes).ok()
}

/// A key as a listing answers it: percent-encoded when the client asked
/// for `encoding-type=url` (awscli does, and decodes what it gets).
pub fn encoded(key: &str, url: bool) -> String {
    if !url {
        return key.to_owned();
    }
    /// Everything but unreserved characters and `/`.
    const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~')
        .remove(b'/');
    percent_encoding::utf8_percent_encode(key, KEEP).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use peercloud_ledger::object_entry::ObjectRef;
    use peercloud_types::ContentId;

    fn items(keys: &[&str]) -> Vec<ObjectItem> {
        keys.iter()
            .map(|k| ObjectItem {
                key: (*k).to_owned(),
                object: ObjectRef {
                    manifest: ContentId::of(k.as_bytes()),
                    size: 1,
                    inline: true,
                },
                at_ms: 0,
            })
            .collect()
    }

    fn keys(page: &Page<'_>) -> Vec<String> {
        page.objects.iter().map(|o| o.key.clone()).collect()
    }

    #[test]
    fn a_listing_pages_and_rolls_up_at_the_delimiter() {
        let all = items(&["a.txt", "docs/1", "docs/2", "docs/sub/3", "img/x", "z"]);
        let p = page(&all, "", Some("/"), None, 1000);
        assert_eq!(keys(&p), ["a.txt", "z"]);
        assert_eq!(p.prefixes, ["docs/", "img/"]);
        assert!(!p.truncated);
        // Pages of two: a prefix counts as one entry and is never repeated.
        let p1 = page(&all, "", Some("/"), None, 2);
        assert_eq!(
            (keys(&p1), p1.prefixes.clone()),
            (vec!["a.txt".to_owned()], vec!["docs/".to_owned()])
        );
        assert!(p1.truncated);
        let p2 = page(&all, "", Some("/"), p1.last.as_deref(), 2);
        assert_eq!(
            (keys(&p2), p2.prefixes.clone()),
            (vec!["z".to_owned()], vec!["img/".to_owned()])
        );
        assert!(!p2.truncated);
        // Under a prefix, rolled up below it.
        let p = page(&all, "docs/", Some("/"), None, 1000);
        assert_eq!(keys(&p), ["docs/1", "docs/2"]);
        assert_eq!(p.prefixes, ["docs/sub/"]);
        // No delimiter: every key, paged.
        let p = page(&all, "", None, Some("docs/2"), 2);
        assert_eq!(keys(&p), ["docs/sub/3", "img/x"]);
        assert!(p.truncated);
        assert_eq!(after_token(&token("docs/é")).as_deref(), Some("docs/é"));
        assert_eq!(encoded("a b/ü+c", true), "a%20b/%C3%BC%2Bc");
        assert_eq!(encoded("a b", false), "a b");
    }
}
