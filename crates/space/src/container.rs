//! Container spaces on the node's Docker engine: create one with a lease's
//! limits, run commands in it, copy files in and out of its `/data`, ask
//! whether it is up, remove it. See the crate doc for what a space is.

use std::collections::HashMap;
use std::time::Duration;

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::exec::{StartExecOptions, StartExecResults};
use bollard::models::{
    ContainerCreateBody, ExecConfig, HostConfig, Mount, MountType, VolumeCreateRequest,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, DownloadFromContainerOptionsBuilder,
    ListContainersOptionsBuilder, RemoveContainerOptionsBuilder, RemoveVolumeOptionsBuilder,
    StatsOptionsBuilder, StopContainerOptionsBuilder, UploadToContainerOptionsBuilder,
};
use futures::StreamExt;
use tokio::io::AsyncWriteExt;

use crate::error::SpaceError;
use crate::image::{BaseImage, base_image_rootfs};
use crate::limits::{SpaceLimits, TMP_BYTES};

/// Label every space carries: its name.
const LABEL_SPACE: &str = "peercloud.space";
/// Label naming the key allowed in.
const LABEL_OWNER: &str = "peercloud.owner";
/// Where the user's files live (the capped volume).
pub const DATA_DIR: &str = "/data";
/// The user the space's commands run as (its keep-alive runs as root with
/// no capabilities, so a command cannot kill it and stop the space).
const NOBODY: &str = "65534:65534";
/// Most output of one command kept, per stream (1 MiB).
pub const OUTPUT_BYTES_MAX: usize = 1 << 20;

/// A connection to the node's container engine.
#[derive(Debug, Clone)]
pub struct ContainerEngine {
    docker: Docker,
    /// The base image's tag, once it is known to be imported.
    image: std::sync::Arc<tokio::sync::OnceCell<String>>,
}

/// One space: a running container and its `/data` volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Space {
    /// Its name (the lease's), unique on the node.
    pub name: String,
    /// The engine's container id.
    pub id: String,
    /// The key allowed in, as text.
    pub owner: String,
}

/// What a command in a space did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    /// Its exit code (137: killed, e.g. by the memory limit).
    pub exit_code: i64,
    /// What it wrote to standard output.
    pub stdout: Vec<u8>,
    /// What it wrote to standard error.
    pub stderr: Vec<u8>,
}

/// Whether a space is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpaceState {
    /// Its container runs.
    Running,
    /// Its container stopped.
    Exited {
        /// The main process's exit code.
        code: i64,
        /// Whether the kernel's memory limit killed it.
        oom_killed: bool,
    },
    /// The engine has no such container.
    Missing,
}

/// The engine's name for the container of space `space`.
pub fn container_name(space: &str) -> String {
    format!("peercloud-{space}")
}

/// The name of `lease`'s space: the lease id's hex (unique across chains).
pub fn lease_space_name(lease: &peercloud_types::LeaseId) -> String {
    format!("{LEASE_SPACE_PREFIX}{}", lease.0)
}

/// The lease a space of that name is for, if it is a lease's space.
pub fn lease_of_space(name: &str) -> Option<peercloud_types::LeaseId> {
    name.strip_prefix(LEASE_SPACE_PREFIX)?.parse().ok()
}

const LEASE_SPACE_PREFIX: &str = "lease-";

fn volume_name(space: &str) -> String {
    format!("peercloud-{space}-data")
}

fn plain_name(name: &str) -> Result<(), SpaceError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(SpaceError::BadName {
            name: name.to_owned(),
        })
    }
}

impl ContainerEngine {
    /// Connects to the engine named by `DOCKER_HOST`, else the local socket,
    /// and checks that it answers.
    pub async fn connect() -> Result<ContainerEngine, SpaceError> {
        let no_engine = |e: bollard::errors::Error| SpaceError::NoEngine {
            reason: e.to_string(),
        };
        let docker = Docker::connect_with_local_defaults().map_err(no_engine)?;
        let docker = docker.negotiate_version().await.map_err(no_engine)?;
        docker.ping().await.map_err(no_engine)?;
        Ok(ContainerEngine {
            docker,
            image: std::sync::Arc::default(),
        })
    }

    /// Imports the base image if the engine does not have it yet; returns
    /// its tag (built and checked once per connection).
    pub async fn ensure_base_image(&self) -> Result<String, SpaceError> {
        self.image
            .get_or_try_init(|| self.import_base_image())
            .await
            .cloned()
    }

    async fn import_base_image(&self) -> Result<String, SpaceError> {
        // One import at a time in this process: two at once would both
        // import, and the first image would be left behind untagged.
        static IMPORT: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
        let _import = IMPORT.lock().await;
        let BaseImage { tag, tar, source } = tokio::task::spawn_blocking(base_image_rootfs)
            .await
            .map_err(|e| SpaceError::BaseImage {
                reason: e.to_string(),
            })??;
        if self.docker.inspect_image(&tag).await.is_ok() {
            return Ok(tag);
        }
        let (repo, version) = tag.split_once(':').unwrap_or((tag.as_str(), "latest"));
        let options = CreateImageOptionsBuilder::default()
            .from_src("-")
            .repo(repo)
            .tag(version)
            .changes(vec![
                "ENV PATH=/bin".to_owned(),
                r#"CMD ["/bin/sh"]"#.to_owned(),
            ])
            .build();
        let mut progress =
            self.docker
                .create_image(Some(options), Some(bollard::body_full(tar.into())), None);
        while let Some(step) = progress.next().await {
            step.map_err(SpaceError::engine("importing the base image"))?;
        }
        tracing::info!(%tag, source, "space base image imported");
        Ok(tag)
    }

    /// Creates and starts space `name` with `limits`, letting in only `owner`.
    pub async fn create(
        &self,
        name: &str,
        limits: &SpaceLimits,
        owner: &str,
    ) -> Result<Space, SpaceError> {
        plain_name(name)?;
        let image = self.ensure_base_image().await?;
        let volume = volume_name(name);
        let options = HashMap::from([
            ("type".to_owned(), "tmpfs".to_owned()),
            ("device".to_owned(), "tmpfs".to_owned()),
            (
                "o".to_owned(),
                format!(
                    "size={},uid=65534,gid=65534,mode=0700,nosuid,nodev",
                    limits.disk_bytes
                ),
            ),
        ]);
        self.docker
            .create_volume(VolumeCreateRequest {
                name: Some(volume.clone()),
                driver: Some("local".to_owned()),
                driver_opts: Some(options),
                labels: Some(HashMap::from([(LABEL_SPACE.to_owned(), name.to_owned())])),
                ..Default::default()
            })
            .await
            .map_err(SpaceError::engine("creating the data volume"))?;
        let memory = limits.cgroup_memory_bytes()?;
        let host = HostConfig {
            // A small init as process 1 (the engine's own): it passes on a
            // stop's signal, so a space stops at once instead of after the
            // grace its `sleep` would ignore, and it reaps orphans.
            init: Some(true),
            memory: Some(memory),
            memory_swap: Some(memory),
            nano_cpus: Some(limits.nano_cpus()?),
            pids_limit: Some(i64::from(limits.pids)),
            readonly_rootfs: Some(true),
            tmpfs: Some(HashMap::from([(
                "/tmp".to_owned(),
                format!("rw,size={TMP_BYTES},mode=1777,nosuid,nodev"),
            )])),
            mounts: Some(vec![Mount {
                target: Some(DATA_DIR.to_owned()),
                source: Some(volume),
                typ: Some(MountType::VOLUME),
                ..Default::default()
            }]),
            network_mode: Some("none".to_owned()),
            cap_drop: Some(vec!["ALL".to_owned()]),
            security_opt: Some(vec!["no-new-privileges".to_owned()]),
            ..Default::default()
        };
        let body = ContainerCreateBody {
            image: Some(image),
            cmd: Some(vec!["sleep".to_owned(), "2147483647".to_owned()]),
            working_dir: Some(DATA_DIR.to_owned()),
            env: Some(vec![
                "PATH=/bin".to_owned(),
                "HOME=/data".to_owned(),
                format!("PEERCLOUD_OWNER={owner}"),
            ]),
            labels: Some(HashMap::from([
                (LABEL_SPACE.to_owned(), name.to_owned()),
                (LABEL_OWNER.to_owned(), owner.to_owned()),
            ])),
            host_config: Some(host),
            ..Default::default()
        };
        let create = CreateContainerOptionsBuilder::default()
            .name(&container_name(name))
            .build();
        let created = match self.docker.create_container(Some(create), body).await {
            Ok(created) => created,
            Err(error) => {
                self.remove_volume(name).await;
                return Err(SpaceError::Engine {
                    during: "creating the container",
                    source: error,
                });
            }
        };
        if let Err(error) = self.docker.start_container(&created.id, None).await {
            let space = Space {
                name: name.to_owned(),
                id: created.id,
                owner: owner.to_owned(),
            };
            self.remove(&space).await?;
            return Err(SpaceError::Engine {
                during: "starting the container",
                source: error,
            });
        }
        Ok(Space {
            name: name.to_owned(),
            id: created.id,
            owner: owner.to_owned(),
        })
    }

    /// The spaces the engine holds (after a node restart: what to resume or remove).
    pub async fn list(&self) -> Result<Vec<Space>, SpaceError> {
        let filters = HashMap::from([("label".to_owned(), vec![LABEL_SPACE.to_owned()])]);
        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        let containers = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(SpaceError::engine("listing spaces"))?;
        Ok(containers
            .into_iter()
            .filter_map(|c| {
                let labels = c.labels?;
                Some(Space {
                    name: labels.get(LABEL_SPACE)?.clone(),
                    id: c.id?,
                    owner: labels.get(LABEL_OWNER).cloned().unwrap_or_default(),
                })
            })
            .collect())
    }

    /// Runs `command` in the space as `nobody`, feeding it `stdin`, and waits
    /// at most `timeout` for it to finish.
    pub async fn exec(
        &self,
        space: &Space,
        command: &[String],
        stdin: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<ExecOutput, SpaceError> {
        let run = self.exec_inner(space, command, stdin);
        tokio::time::timeout(timeout, run)
            .await
            .map_err(|_| SpaceError::ExecTimeout {
                space: space.name.clone(),
                seconds: timeout.as_secs(),
            })?
    }

    async fn exec_inner(
        &self,
        space: &Space,
        command: &[String],
        stdin: Option<&[u8]>,
    ) -> Result<ExecOutput, SpaceError> {
        let exec = self
            .docker
            .create_exec(
                &space.id,
                ExecConfig {
                    cmd: Some(command.to_vec()),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    attach_stdin: Some(stdin.is_some()),
                    user: Some(NOBODY.to_owned()),
                    working_dir: Some(DATA_DIR.to_owned()),
                    ..Default::default()
                },
            )
            .await
            .map_err(SpaceError::engine("creating a command"))?;
        let options = StartExecOptions {
            detach: false,
            tty: false,
            output_capacity: None,
        };
        let started = self
            .docker
            .start_exec(&exec.id, Some(options))
            .await
            .map_err(SpaceError::engine("starting a command"))?;
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        if let StartExecResults::Attached {
            mut output,
            mut input,
        } = started
        {
            // Input is written beside the output's reader: a command that
            // writes as it reads (`cat`) would otherwise stall both pipes.
            let bytes = stdin.map(<[u8]>::to_vec);
            let writer = tokio::spawn(async move {
                if let Some(bytes) = bytes {
                    // A command that exits without reading its input is no error.
                    let _ = input.write_all(&bytes).await;
                }
                let _ = input.shutdown().await;
            });
            while let Some(chunk) = output.next().await {
                // Kept up to the bound; the rest is read and dropped, so a
                // chatty command cannot fill the node's memory.
                let keep = |out: &mut Vec<u8>, bytes: &[u8]| {
                    let room = OUTPUT_BYTES_MAX.saturating_sub(out.len());
                    out.extend_from_slice(&bytes[..bytes.len().min(room)]);
                };
                match chunk.map_err(SpaceError::engine("reading a command's output"))? {
                    LogOutput::StdOut { message } | LogOutput::Console { message } => {
                        keep(&mut stdout, &message)
                    }
                    LogOutput::StdErr { message } => keep(&mut stderr, &message),
                    LogOutput::StdIn { .. } => {}
                }
            }
            writer.abort();
        }
        // The stream ends when the process does; its code follows shortly.
        loop {
            let inspect = self
                .docker
                .inspect_exec(&exec.id)
                .await
                .map_err(SpaceError::engine("reading a command's exit code"))?;
            if inspect.running != Some(true) {
                return Ok(ExecOutput {
                    exit_code: inspect.exit_code.unwrap_or(-1),
                    stdout,
                    stderr,
                });
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Writes `bytes` as file `name` in the space's `/data` (owned by `nobody`).
    pub async fn upload(&self, space: &Space, name: &str, bytes: &[u8]) -> Result<(), SpaceError> {
        plain_name(name)?;
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_uid(65534);
        header.set_gid(65534);
        header.set_mtime(0);
        let mut builder = tar::Builder::new(Vec::new());
        builder
            .append_data(&mut header, name, bytes)
            .and_then(|()| builder.finish())
            .map_err(|e| SpaceError::File {
                space: space.name.clone(),
                path: name.to_owned(),
                reason: e.to_string(),
            })?;
        let tar = builder.into_inner().map_err(|e| SpaceError::File {
            space: space.name.clone(),
            path: name.to_owned(),
            reason: e.to_string(),
        })?;
        let options = UploadToContainerOptionsBuilder::default()
            .path(DATA_DIR)
            .build();
        self.docker
            .upload_to_container(&space.id, Some(options), bollard::body_full(tar.into()))
            .await
            .map_err(SpaceError::engine("copying a file in"))
    }

    /// Reads file `name` from the space's `/data`, refusing one over `max_bytes`.
    pub async fn download(
        &self,
        space: &Space,
        name: &str,
        max_bytes: u64,
    ) -> Result<Vec<u8>, SpaceError> {
        plain_name(name)?;
        let path = format!("{DATA_DIR}/{name}");
        let file_error = |reason: String| SpaceError::File {
            space: space.name.clone(),
            path: path.clone(),
            reason,
        };
        let options = DownloadFromContainerOptionsBuilder::default()
            .path(&path)
            .build();
        let mut stream = self
            .docker
            .download_from_container(&space.id, Some(options));
        // The tar holds the file and a header; a little slack over the bound.
        let bound = max_bytes.saturating_add(64 << 10);
        let mut tar = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| file_error(e.to_string()))?;
            tar.extend_from_slice(&chunk);
            if tar.len() as u64 > bound {
                return Err(file_error(format!("larger than {max_bytes} bytes")));
            }
        }
        let mut archive = tar::Archive::new(tar.as_slice());
        let mut entries = archive.entries().map_err(|e| file_error(e.to_string()))?;
        let mut entry = entries
            .next()
            .ok_or_else(|| file_error("not found".into()))?
            .map_err(|e| file_error(e.to_string()))?;
        if entry.header().entry_type() != tar::EntryType::Regular {
            return Err(file_error("not a regular file".into()));
        }
        if entry.size() > max_bytes {
            return Err(file_error(format!("larger than {max_bytes} bytes")));
        }
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes)
            .map_err(|e| file_error(e.to_string()))?;
        Ok(bytes)
    }

    /// Whether the space is up.
    pub async fn state(&self, space: &Space) -> Result<SpaceState, SpaceError> {
        match self.docker.inspect_container(&space.id, None).await {
            Ok(inspect) => {
                let state = inspect.state.unwrap_or_default();
                Ok(if state.running == Some(true) {
                    SpaceState::Running
                } else {
                    SpaceState::Exited {
                        code: state.exit_code.unwrap_or(-1),
                        oom_killed: state.oom_killed == Some(true),
                    }
                })
            }
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(SpaceState::Missing),
            Err(error) => Err(SpaceError::Engine {
                during: "inspecting a space",
                source: error,
            }),
        }
    }

    /// Starts a stopped space again (its `/data` as it was); one already
    /// running is no error.
    pub async fn start(&self, space: &Space) -> Result<(), SpaceError> {
        match self.docker.start_container(&space.id, None).await {
            // 304: already running.
            Ok(())
            | Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 304, ..
            }) => Ok(()),
            Err(source) => Err(SpaceError::Engine {
                during: "starting a space",
                source,
            }),
        }
    }

    /// Stops the space's processes (its files stay until [`Self::remove`]).
    pub async fn stop(&self, space: &Space) -> Result<(), SpaceError> {
        let options = StopContainerOptionsBuilder::default().t(2).build();
        match self.docker.stop_container(&space.id, Some(options)).await {
            // 304: already stopped.
            Ok(())
            | Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 304 | 404,
                ..
            }) => Ok(()),
            Err(source) => Err(SpaceError::Engine {
                during: "stopping a space",
                source,
            }),
        }
    }

    /// How many processes (and threads) the space runs now.
    pub async fn processes(&self, space: &Space) -> Result<u64, SpaceError> {
        let options = StatsOptionsBuilder::default()
            .stream(false)
            .one_shot(true)
            .build();
        let mut stats = self.docker.stats(&space.id, Some(options));
        let first = stats
            .next()
            .await
            .ok_or(SpaceError::NoEngine {
                reason: "the engine sent no statistics".into(),
            })?
            .map_err(SpaceError::engine("reading a space's statistics"))?;
        Ok(first.pids_stats.and_then(|p| p.current).unwrap_or(0))
    }

    /// Removes the space's container and its data; a space already gone is no error.
    pub async fn remove(&self, space: &Space) -> Result<(), SpaceError> {
        let options = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        match self.docker.remove_container(&space.id, Some(options)).await {
            Ok(())
            | Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => {}
            Err(error) => {
                return Err(SpaceError::Engine {
                    during: "removing a space",
                    source: error,
                });
            }
        }
        self.remove_volume(&space.name).await;
        Ok(())
    }

    async fn remove_volume(&self, name: &str) {
        let options = RemoveVolumeOptionsBuilder::default().force(true).build();
        if let Err(error) = self
            .docker
            .remove_volume(&volume_name(name), Some(options))
            .await
        {
            tracing::debug!(%error, space = name, "data volume not removed");
        }
    }
}
