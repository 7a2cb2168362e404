//! Websites from public buckets: objects put through one node are served
//! by another node's web gateway, path-style and by virtual host, with what
//! a browser and a cache expect (content types, a directory's index.html,
//! the site's 404.html, ETag and If-None-Match, Range, HEAD), and a deploy
//! of the same files again sends nothing.

mod common;

use common::*;

use peercloud_client::bucket::{self, NewObject};
use peercloud_devnet::Grid;
use peercloud_node::web::site_label;
use reqwest::StatusCode;
use reqwest::blocking::Client;
use reqwest::header;

#[test]
fn a_public_bucket_is_served_as_a_website_by_every_node() {
    let dir = tempfile::tempdir().expect("tempdir");
    let grid = Grid::start(dir.path(), 4).expect("a grid of four providers");
    let user = grid.user().clone();
    let node = grid.node(1).expect("node 1");
    let site = new_bucket(&grid, &node, 50, true);
    let private = new_bucket(&grid, &node, 0, false);

    let big = content(64 << 10, 7);
    let files: Vec<(&str, &[u8])> = vec![
        ("index.html", b"<h1>home</h1>"),
        ("about/index.html", b"<h1>about</h1>"),
        ("404.html", b"<h1>not here</h1>"),
        ("css/site.css", b"h1{color:teal}"),
        ("big.bin", &big),
    ];
    let objects: Vec<NewObject<'_>> = files
        .iter()
        .map(|(key, bytes)| NewObject { key, bytes })
        .collect();
    bucket::put_many(&node, &user, &site, &objects).expect("the site's files");
    bucket::put(&node, &user, &private, "index.html", &b"secret"[..]).expect("a private file");

    // Served by another node than the one it was put through.
    let web = inner(&grid, 3)
        .web_url
        .get()
        .cloned()
        .expect("node 3 serves the web");
    let base = format!("{web}/{}", site.0);
    let http = Client::new();
    let get = |url: &str| http.get(url).send().expect("an answer");

    let home = get(&format!("{base}/"));
    assert_eq!(home.status(), StatusCode::OK);
    let headers = home.headers().clone();
    assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
    assert!(
        headers[header::CACHE_CONTROL]
            .to_str()
            .unwrap()
            .contains("max-age")
    );
    let etag = headers[header::ETAG].clone();
    assert_eq!(home.bytes().unwrap().as_ref(), b"<h1>home</h1>");
    let again = http
        .get(format!("{base}/index.html"))
        .header(header::IF_NONE_MATCH, etag.clone())
        .send()
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(again.headers()[header::ETAG], etag);

    let css = get(&format!("{base}/css/site.css"));
    assert_eq!(
        css.headers()[header::CONTENT_TYPE],
        "text/css; charset=utf-8"
    );
    assert_eq!(css.bytes().unwrap().as_ref(), b"h1{color:teal}");
    let no_follow = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let about = no_follow.get(format!("{base}/about")).send().unwrap();
    assert_eq!(about.status(), StatusCode::MOVED_PERMANENTLY);
    let location = about.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(location, format!("/{}/about/", site.0));
    let about = get(&format!("{web}{location}"));
    assert_eq!(about.bytes().unwrap().as_ref(), b"<h1>about</h1>");
    let nope = get(&format!("{base}/nope.html"));
    assert_eq!(nope.status(), StatusCode::NOT_FOUND);
    assert_eq!(nope.bytes().unwrap().as_ref(), b"<h1>not here</h1>");

    // Range and HEAD on an object stored on the cluster's holders.
    let part = http
        .get(format!("{base}/big.bin"))
        .header(header::RANGE, "bytes=1000-1999")
        .send()
        .unwrap();
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        part.headers()[header::CONTENT_RANGE],
        format!("bytes 1000-1999/{}", big.len()).as_str()
    );
    assert_eq!(part.bytes().unwrap().as_ref(), &big[1000..2000]);
    let tail = http
        .get(format!("{base}/big.bin"))
        .header(header::RANGE, "bytes=-10")
        .send()
        .unwrap();
    assert_eq!(tail.bytes().unwrap().as_ref(), &big[big.len() - 10..]);
    let outside = http
        .get(format!("{base}/big.bin"))
        .header(header::RANGE, "bytes=999999-")
        .send()
        .unwrap();
    assert_eq!(outside.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    let whole = get(&format!("{base}/big.bin"));
    assert_eq!(
        whole.headers()[header::CONTENT_TYPE],
        "application/octet-stream"
    );
    assert_eq!(whole.bytes().unwrap().as_ref(), &big[..]);
    // Again (now from the gateway's memory), whole and in part.
    assert_eq!(
        get(&format!("{base}/big.bin")).bytes().unwrap().as_ref(),
        &big[..]
    );
    let part = http
        .get(format!("{base}/big.bin"))
        .header(header::RANGE, "bytes=10-19")
        .send()
        .unwrap();
    assert_eq!(part.bytes().unwrap().as_ref(), &big[10..20]);
    let head = http.head(format!("{base}/big.bin")).send().unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(
        head.headers()[header::CONTENT_LENGTH],
        big.len().to_string().as_str()
    );

    // Virtual-host addressing: the bucket's site label as the first label.
    let by_host = http
        .get(format!("{web}/css/site.css"))
        .header(
            header::HOST,
            format!("{}.sites.localhost", site_label(&site)),
        )
        .send()
        .unwrap();
    assert_eq!(by_host.status(), StatusCode::OK);
    assert_eq!(by_host.bytes().unwrap().as_ref(), b"h1{color:teal}");

    // A private bucket is not served; a site takes no writes.
    let refused = get(&format!("{web}/{}/index.html", private.0));
    assert_eq!(refused.status(), StatusCode::NOT_FOUND);
    assert!(refused.text().unwrap().contains("private"));
    let control = get(&format!("{base}/a%07b"));
    assert_eq!(control.status(), StatusCode::BAD_REQUEST);
    assert!(control.text().unwrap().contains("control"));
    let post = http.post(format!("{base}/index.html")).send().unwrap();
    assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);

    // An update is served once the gateway's lookup of the key is past
    // its second.
    bucket::put(&node, &user, &site, "css/site.css", &b"h1{color:navy}"[..]).expect("an update");
    std::thread::sleep(peercloud_node::web::LOOKUP_FRESH + std::time::Duration::from_millis(100));
    let updated = get(&format!("{base}/css/site.css"));
    assert_eq!(updated.bytes().unwrap().as_ref(), b"h1{color:navy}");
    bucket::put(&node, &user, &site, "css/site.css", &b"h1{color:teal}"[..]).expect("put back");

    // Deployed again as it is, nothing changed; one edited file did.
    let same = bucket::unchanged(&node, &site, &objects).expect("a comparison");
    assert_eq!(same, vec![true; objects.len()]);
    let mut edited = objects.clone();
    edited[3] = NewObject {
        key: "css/site.css",
        bytes: b"h1{color:red}",
    };
    let same = bucket::unchanged(&node, &site, &edited).expect("a comparison");
    assert_eq!(same, [true, true, true, false, true]);
}
