//! The S3 operations, as s3s routes them: each finds the caller's key,
//! then does its work through [`super::buckets`], [`super::objects`],
//! [`super::listing`] and [`super::multipart`].

use s3s::dto::*;
use s3s::{S3, S3Request, S3Response, S3Result, s3_error};

use super::buckets::timestamp;
use super::listing::{self, MAX_KEYS};
use super::objects::{body_reader, check_conditions, content_md5, range_of};
use super::{Gateway, internal};
use peercloud_client::bucket as flows;

/// The content type a key's name suggests (objects keep no type of their own).
fn content_type_of(key: &str) -> Option<ContentType> {
    mime_guess::from_path(key)
        .first_raw()
        .and_then(|t| t.parse().ok())
}

/// Whether a listing's keys are to be percent-encoded.
fn url_encoded(encoding: Option<&EncodingType>) -> bool {
    encoding.is_some_and(|e| e.as_str() == EncodingType::URL)
}

fn max_keys(asked: Option<i32>) -> usize {
    asked.map_or(MAX_KEYS, |n| usize::try_from(n).unwrap_or(0).min(MAX_KEYS))
}

fn length(header: Option<i64>) -> Option<u64> {
    header.and_then(|n| u64::try_from(n).ok())
}

fn owner() -> Owner {
    Owner {
        display_name: Some("peercloud".into()),
        id: Some("peercloud".into()),
    }
}

/// A listing's page, as S3 shows it.
struct Listed {
    contents: Vec<Object>,
    prefixes: Vec<CommonPrefix>,
    /// Where the next page starts after, when there is one.
    next: Option<String>,
    /// The prefix asked, encoded as the keys are.
    prefix: String,
    max_keys: i32,
}

impl Gateway {
    /// One page of the caller's `bucket` as every listing answers it.
    #[allow(clippy::too_many_arguments)]
    async fn list_page(
        &self,
        key: &super::keys::S3Key,
        bucket: &str,
        prefix: &Option<String>,
        delimiter: &Option<String>,
        after: Option<String>,
        max_keys: Option<i32>,
        encoding: &Option<EncodingType>,
    ) -> S3Result<Listed> {
        let bucket = self.resolve(key, bucket)?;
        let prefix = prefix.clone().unwrap_or_default();
        let max = self::max_keys(max_keys);
        // The index is read a page at a time from the marker on, until the
        // listing's page is full (one entry past it) or the keys run out.
        let (id, scan_prefix, scan_after, scan_delimiter) =
            (bucket.id, prefix.clone(), after.clone(), delimiter.clone());
        let items = self
            .blocking(move |node| {
                let mut items = Vec::new();
                // Keys under a prefix the listing rolls up are skipped in
                // the index itself: past the prefix's last possible key.
                let past = |common: &str| format!("{common}{}", char::MAX);
                let rolled = |key: &str| {
                    scan_delimiter
                        .as_deref()
                        .filter(|d| !d.is_empty() && key.starts_with(scan_prefix.as_str()))
                        .and_then(|d| {
                            let rest = &key[scan_prefix.len()..];
                            rest.find(d)
                                .map(|at| format!("{scan_prefix}{}", &rest[..at + d.len()]))
                        })
                };
                let mut cursor = scan_after.as_deref().map(|after| {
                    rolled(after)
                        .filter(|p| p == after)
                        .map_or(after.to_owned(), |p| past(&p))
                });
                loop {
                    let (page, next) = flows::list_page(node, &id, &scan_prefix, cursor.as_deref())
                        .map_err(internal)?;
                    items.extend(page);
                    let listed = listing::page(
                        &items,
                        &scan_prefix,
                        scan_delimiter.as_deref(),
                        scan_after.as_deref(),
                        max,
                    );
                    match next {
                        Some(next) if !listed.truncated => {
                            cursor = Some(match rolled(&next) {
                                Some(common) => past(&common),
                                None => next,
                            });
                        }
                        _ => return Ok(items),
                    }
                }
            })
            .await?;
        let page = listing::page(&items, &prefix, delimiter.as_deref(), after.as_deref(), max);
        let url = url_encoded(encoding.as_ref());
        let contents = page
            .objects
            .iter()
            .map(|item| self.listed(item, url))
            .collect::<S3Result<_>>()?;
        let prefixes = page
            .prefixes
            .iter()
            .map(|p| CommonPrefix {
                prefix: Some(listing::encoded(p, url)),
            })
            .collect();
        Ok(Listed {
            contents,
            prefixes,
            next: page.truncated.then_some(page.last).flatten(),
            prefix: listing::encoded(&prefix, url),
            max_keys: max as i32,
        })
    }

    /// An object as a listing shows it.
    fn listed(&self, item: &flows::ObjectItem, url: bool) -> S3Result<Object> {
        Ok(Object {
            key: Some(listing::encoded(&item.key, url)),
            e_tag: Some(ETag::Strong(self.etag_of(&item.object.manifest)?)),
            size: Some(item.object.size as i64),
            last_modified: Some(timestamp(item.at_ms)),
            storage_class: Some(ObjectStorageClass::from_static(
                ObjectStorageClass::STANDARD,
            )),
            owner: Some(owner()),
            ..Default::default()
        })
    }
}

#[async_trait::async_trait]
impl S3 for Gateway {
    async fn list_buckets(
        &self,
        req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        let key = self.caller(&req)?;
        let buckets = self.list_my_buckets(&key)?;
        Ok(S3Response::new(ListBucketsOutput {
            buckets: Some(buckets),
            owner: Some(owner()),
            ..Default::default()
        }))
    }

    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        let key = self.caller(&req)?;
        let name = req.input.bucket;
        self.create(key, name.clone()).await?;
        Ok(S3Response::new(CreateBucketOutput {
            location: Some(format!("/{name}")),
        }))
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        let key = self.caller(&req)?;
        self.resolve(&key, &req.input.bucket)?;
        Ok(S3Response::new(HeadBucketOutput::default()))
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        let key = self.caller(&req)?;
        self.resolve(&key, &req.input.bucket)?;
        Ok(S3Response::new(GetBucketLocationOutput::default()))
    }

    async fn get_bucket_versioning(
        &self,
        req: S3Request<GetBucketVersioningInput>,
    ) -> S3Result<S3Response<GetBucketVersioningOutput>> {
        let key = self.caller(&req)?;
        self.resolve(&key, &req.input.bucket)?;
        // Never versioned: the index keeps each key's latest write.
        Ok(S3Response::new(GetBucketVersioningOutput::default()))
    }

    async fn delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        let key = self.caller(&req)?;
        self.delete(key, req.input.bucket).await?;
        Ok(S3Response::new(DeleteBucketOutput::default()))
    }

    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        let key = self.caller(&req)?;
        let input = req.input;
        let bucket = self.resolve(&key, &input.bucket)?;
        if input.if_match.is_some() || input.if_none_match.is_some() {
            let found = match self.find(&bucket, &input.key).await {
                Ok(found) => Some(found),
                Err(e) if *e.code() == s3s::S3ErrorCode::NoSuchKey => None,
                Err(e) => return Err(e),
            };
            let exists_and = |c: &ETagCondition, f: &super::objects::Found| match c {
                ETagCondition::Any => true,
                ETagCondition::ETag(tag) => tag.value() == f.etag,
            };
            if let Some(c) = &input.if_none_match
                && found.as_ref().is_some_and(|f| exists_and(c, f))
            {
                return Err(s3_error!(
                    PreconditionFailed,
                    "If-None-Match: the key names an object"
                ));
            }
            if let Some(c) = &input.if_match
                && !found.as_ref().is_some_and(|f| exists_and(c, f))
            {
                return Err(s3_error!(
                    PreconditionFailed,
                    "If-Match: the key's object differs"
                ));
            }
        }
        let body = input
            .body
            .ok_or_else(|| s3_error!(IncompleteBody, "a put needs a body"))?;
        let md5 = content_md5(input.content_md5.as_deref())?;
        let stored = self
            .store(
                &bucket,
                &input.key,
                body_reader(body),
                length(input.content_length),
                md5,
            )
            .await?;
        Ok(S3Response::new(PutObjectOutput {
            e_tag: Some(ETag::Strong(stored.etag)),
            size: Some(stored.size as i64),
            ..Default::default()
        }))
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        let key = self.caller(&req)?;
        let input = req.input;
        let bucket = self.resolve(&key, &input.bucket)?;
        let found = self.find(&bucket, &input.key).await?;
        check_conditions(
            &found,
            input.if_match.as_ref(),
            input.if_none_match.as_ref(),
            input.if_modified_since.as_ref(),
            input.if_unmodified_since.as_ref(),
        )?;
        let size = found.item.object.size;
        let (skip, take, content_range) = range_of(input.range.as_ref(), size)?;
        let body = self.stream(&bucket, &input.key, &found, skip, take);
        Ok(S3Response::new(GetObjectOutput {
            body: Some(body),
            content_length: Some(take as i64),
            content_range,
            accept_ranges: Some("bytes".into()),
            e_tag: Some(ETag::Strong(found.etag.clone())),
            last_modified: Some(found.last_modified()),
            content_type: content_type_of(&input.key),
            ..Default::default()
        }))
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        let key = self.caller(&req)?;
        let input = req.input;
        let bucket = self.resolve(&key, &input.bucket)?;
        let found = self.find(&bucket, &input.key).await?;
        check_conditions(
            &found,
            input.if_match.as_ref(),
            input.if_none_match.as_ref(),
            input.if_modified_since.as_ref(),
            input.if_unmodified_since.as_ref(),
        )?;
        let size = found.item.object.size;
        let (_, take, content_range) = range_of(input.range.as_ref(), size)?;
        Ok(S3Response::new(HeadObjectOutput {
            content_length: Some(take as i64),
            content_range,
            accept_ranges: Some("bytes".into()),
            e_tag: Some(ETag::Strong(found.etag.clone())),
            last_modified: Some(found.last_modified()),
            content_type: content_type_of(&input.key),
            ..Default::default()
        }))
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        let key = self.caller(&req)?;
        let input = req.input;
        let bucket = self.resolve(&key, &input.bucket)?;
        super::objects::checked_key(&input.key)?;
        let (wallet, id, object) = (bucket.wallet, bucket.id, input.key);
        self.blocking(
            move |node| match flows::delete(node, &wallet, &id, &object) {
                // S3 answers a delete of nothing as done.
                Ok(_) | Err(flows::BucketError::NotFound { .. }) => Ok(()),
                Err(e) => Err(super::objects::flow_error(e, &object)),
            },
        )
        .await?;
        Ok(S3Response::new(DeleteObjectOutput::default()))
    }

    async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        let key = self.caller(&req)?;
        let input = req.input;
        let bucket = self.resolve(&key, &input.bucket)?;
        let quiet = input.delete.quiet.unwrap_or(false);
        let keys: Vec<String> = input.delete.objects.into_iter().map(|o| o.key).collect();
        let (wallet, id) = (bucket.wallet, bucket.id);
        let outcomes = self
            .blocking(move |node| {
                Ok(keys
                    .into_iter()
                    .map(|object| {
                        let outcome = match flows::delete(node, &wallet, &id, &object) {
                            Ok(_) | Err(flows::BucketError::NotFound { .. }) => Ok(()),
                            Err(e) => Err(e.to_string()),
                        };
                        (object, outcome)
                    })
                    .collect::<Vec<_>>())
            })
            .await?;
        let mut deleted = Vec::new();
        let mut errors = Vec::new();
        for (object, outcome) in outcomes {
            match outcome {
                Ok(()) if !quiet => deleted.push(DeletedObject {
                    key: Some(object),
                    ..Default::default()
                }),
                Ok(()) => {}
                Err(message) => errors.push(Error {
                    code: Some("InternalError".into()),
                    key: Some(object),
                    message: Some(message),
                    version_id: None,
                }),
            }
        }
        Ok(S3Response::new(DeleteObjectsOutput {
            deleted: Some(deleted),
            errors: (!errors.is_empty()).then_some(errors),
            ..Default::default()
        }))
    }

    async fn copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        let key = self.caller(&req)?;
        let input = req.input;
        let CopySource::Bucket {
            bucket: from_bucket,
            key: from_key,
            ..
        } = &input.copy_source
        else {
            return Err(s3_error!(NotImplemented, "only a copy from a bucket"));
        };
        let from = self.resolve(&key, from_bucket)?;
        let source = self.find(&from, from_key).await?;
        check_conditions(
            &source,
            input.copy_source_if_match.as_ref(),
            input.copy_source_if_none_match.as_ref(),
            input.copy_source_if_modified_since.as_ref(),
            input.copy_source_if_unmodified_since.as_ref(),
        )
        .map_err(|e| match e.code() {
            s3s::S3ErrorCode::NotModified => {
                s3_error!(PreconditionFailed, "the source matches If-None-Match")
            }
            _ => e,
        })?;
        let to = self.resolve(&key, &input.bucket)?;
        let (reader, writer) = std::io::pipe().map_err(internal)?;
        let (node, wallet, id, object) = (
            self.node.clone(),
            from.wallet.clone(),
            from.id,
            from_key.to_string(),
        );
        let reading = tokio::task::spawn_blocking(move || {
            let mut writer = writer;
            flows::get(&node, &wallet, &id, &object, &mut writer).map(|_| ())
        });
        let stored = self
            .store(&to, &input.key, reader, Some(source.item.object.size), None)
            .await;
        let read = reading.await.map_err(internal)?;
        // The put's error first: a put that stopped reading breaks the
        // pipe under the get, whose error then says only that.
        let stored = match (stored, read) {
            (Ok(stored), Ok(())) => stored,
            (Err(e), _) => return Err(e),
            (Ok(_), Err(e)) => return Err(super::objects::flow_error(e, from_key)),
        };
        Ok(S3Response::new(CopyObjectOutput {
            copy_object_result: Some(CopyObjectResult {
                e_tag: Some(ETag::Strong(stored.etag)),
                last_modified: Some(timestamp(peercloud_types::clock::now_ms())),
                ..Default::default()
            }),
            ..Default::default()
        }))
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        let key = self.caller(&req)?;
        let input = req.input;
        let after = match &input.continuation_token {
            Some(token) => Some(listing::after_token(token).ok_or_else(|| {
                s3_error!(
                    InvalidArgument,
                    "the continuation token is not one this gateway gave"
                )
            })?),
            None => input.start_after.clone(),
        };
        let page = self
            .list_page(
                &key,
                &input.bucket,
                &input.prefix,
                &input.delimiter,
                after,
                input.max_keys,
                &input.encoding_type,
            )
            .await?;
        Ok(S3Response::new(ListObjectsV2Output {
            key_count: Some((page.contents.len() + page.prefixes.len()) as i32),
            next_continuation_token: page.next.as_deref().map(listing::token),
            name: Some(input.bucket),
            prefix: Some(page.prefix),
            delimiter: input.delimiter,
            max_keys: Some(page.max_keys),
            is_truncated: Some(page.next.is_some()),
            continuation_token: input.continuation_token,
            start_after: input.start_after,
            encoding_type: input.encoding_type,
            contents: Some(page.contents),
            common_prefixes: Some(page.prefixes),
            ..Default::default()
        }))
    }

    async fn list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        let key = self.caller(&req)?;
        let input = req.input;
        let page = self
            .list_page(
                &key,
                &input.bucket,
                &input.prefix,
                &input.delimiter,
                input.marker.clone(),
                input.max_keys,
                &input.encoding_type,
            )
            .await?;
        Ok(S3Response::new(ListObjectsOutput {
            name: Some(input.bucket),
            prefix: Some(page.prefix),
            marker: input.marker,
            delimiter: input.delimiter,
            max_keys: Some(page.max_keys),
            is_truncated: Some(page.next.is_some()),
            next_marker: page.next,
            encoding_type: input.encoding_type,
            contents: Some(page.contents),
            common_prefixes: Some(page.prefixes),
            ..Default::default()
        }))
    }

    async fn list_object_versions(
        &self,
        req: S3Request<ListObjectVersionsInput>,
    ) -> S3Result<S3Response<ListObjectVersionsOutput>> {
        let key = self.caller(&req)?;
        let input = req.input;
        let page = self
            .list_page(
                &key,
                &input.bucket,
                &input.prefix,
                &input.delimiter,
                input.key_marker.clone(),
                input.max_keys,
                &input.encoding_type,
            )
            .await?;
        // One version per key: the index keeps the latest write of each.
        let versions = page
            .contents
            .into_iter()
            .map(|object| ObjectVersion {
                key: object.key,
                e_tag: object.e_tag,
                size: object.size,
                last_modified: object.last_modified,
                is_latest: Some(true),
                version_id: Some("null".into()),
                storage_class: Some(ObjectVersionStorageClass::from_static(
                    ObjectVersionStorageClass::STANDARD,
                )),
                owner: Some(owner()),
                ..Default::default()
            })
            .collect();
        Ok(S3Response::new(ListObjectVersionsOutput {
            name: Some(input.bucket),
            prefix: Some(page.prefix),
            delimiter: input.delimiter,
            key_marker: input.key_marker,
            max_keys: Some(page.max_keys),
            is_truncated: Some(page.next.is_some()),
            next_key_marker: page.next,
            encoding_type: input.encoding_type,
            versions: Some(versions),
            common_prefixes: Some(page.prefixes),
            ..Default::default()
        }))
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        let key = self.caller(&req)?;
        let input = req.input;
        self.resolve(&key, &input.bucket)?;
        let id = self.start_upload(&key, &input.bucket, &input.key)?;
        Ok(S3Response::new(CreateMultipartUploadOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            upload_id: Some(id),
            ..Default::default()
        }))
    }

    async fn upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        let key = self.caller(&req)?;
        let input = req.input;
        let (_, dir) = self.upload_of(&key, &input.upload_id, &input.bucket, &input.key)?;
        let body = input
            .body
            .ok_or_else(|| s3_error!(IncompleteBody, "a part needs a body"))?;
        let md5 = content_md5(input.content_md5.as_deref())?;
        let part = self
            .put_part(
                dir,
                input.part_number,
                body_reader(body),
                length(input.content_length),
                md5,
            )
            .await?;
        Ok(S3Response::new(UploadPartOutput {
            e_tag: Some(ETag::Strong(part.etag())),
            ..Default::default()
        }))
    }

    async fn list_parts(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        let key = self.caller(&req)?;
        let input = req.input;
        let (_, dir) = self.upload_of(&key, &input.upload_id, &input.bucket, &input.key)?;
        let marker = input.part_number_marker.unwrap_or(0);
        let max = input
            .max_parts
            .map_or(MAX_KEYS, |n| usize::try_from(n).unwrap_or(0).min(MAX_KEYS));
        let mut parts: Vec<_> = self
            .parts(dir)
            .await?
            .into_iter()
            .filter(|p| p.number > marker)
            .collect();
        let truncated = parts.len() > max;
        parts.truncate(max);
        Ok(S3Response::new(ListPartsOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            upload_id: Some(input.upload_id),
            part_number_marker: input.part_number_marker,
            next_part_number_marker: parts.last().map(|p| p.number),
            max_parts: Some(max as i32),
            is_truncated: Some(truncated),
            parts: Some(parts.iter().map(|p| p.part()).collect()),
            owner: Some(owner()),
            ..Default::default()
        }))
    }

    async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        let key = self.caller(&req)?;
        let input = req.input;
        self.resolve(&key, &input.bucket)?;
        let wallet = key.wallet().account_id();
        let prefix = input.prefix.clone().unwrap_or_default();
        let mut uploads: Vec<(String, super::names::Upload)> = self
            .names
            .uploads()
            .map_err(internal)?
            .into_iter()
            .filter(|(_, u)| {
                u.owner == wallet && u.bucket == input.bucket && u.key.starts_with(&prefix)
            })
            .collect();
        uploads.sort_by(|a, b| (&a.1.key, &a.0).cmp(&(&b.1.key, &b.0)));
        let listed = uploads
            .into_iter()
            .map(|(id, u)| MultipartUpload {
                key: Some(u.key),
                upload_id: Some(id),
                initiated: Some(timestamp(u.created_ms)),
                owner: Some(owner()),
                ..Default::default()
            })
            .collect();
        Ok(S3Response::new(ListMultipartUploadsOutput {
            bucket: Some(input.bucket),
            prefix: input.prefix,
            is_truncated: Some(false),
            max_uploads: Some(MAX_KEYS as i32),
            uploads: Some(listed),
            ..Default::default()
        }))
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let key = self.caller(&req)?;
        let input = req.input;
        let bucket = self.resolve(&key, &input.bucket)?;
        let (_, dir) = self.upload_of(&key, &input.upload_id, &input.bucket, &input.key)?;
        let listed = input
            .multipart_upload
            .and_then(|m| m.parts)
            .unwrap_or_default();
        let stored = self
            .complete(&bucket, &input.upload_id, dir, &input.key, listed)
            .await?;
        Ok(S3Response::new(CompleteMultipartUploadOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            e_tag: Some(ETag::Strong(stored.etag)),
            ..Default::default()
        }))
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        let key = self.caller(&req)?;
        let input = req.input;
        let (_, dir) = self.upload_of(&key, &input.upload_id, &input.bucket, &input.key)?;
        self.abort(&input.upload_id, dir).await?;
        Ok(S3Response::new(AbortMultipartUploadOutput::default()))
    }
}
