//! Consumption control: `pauseConsumption`, `resumeConsumption`, `pauseStatus`,
//! `forceCommit`, `forceCommitStatus/{job}` and `consumingSegmentsInfo`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::Json;
use riffle_common::{TableNameWithType, TableType};
use riffle_controller::PauseStatus;

use super::table_in_path;
use crate::error::ApiError;
use crate::models::{
    list, ConsumerInfo, ConsumingSegmentsInfo, ForceCommitParams, ForceCommitResponse,
    ForceCommitStatusResponse, PauseParams, ResumeParams,
};
use crate::Services;

/// How long `pauseConsumption` waits for the consuming segments to commit.
const PAUSE_WAIT: Duration = Duration::from_secs(30);

/// The REALTIME table a control request names; 404 if it does not exist.
async fn realtime_table(s: &Services, name: &str) -> Result<TableNameWithType, ApiError> {
    let (raw, _) = table_in_path(name)?;
    let full = raw.with_type(TableType::Realtime);
    if s.tables.table(&full).await?.is_none() {
        return Err(ApiError::not_found(format!("Table {full} not found")));
    }
    Ok(full)
}

/// `POST /tables/{t}/pauseConsumption[?comment=...]`.
pub(super) async fn pause(
    State(s): State<Arc<Services>>,
    Path(name): Path<String>,
    Query(q): Query<PauseParams>,
) -> Result<Json<PauseStatus>, ApiError> {
    let full = realtime_table(&s, &name).await?;
    Ok(Json(s.tables.pause(&full, q.comment, PAUSE_WAIT).await?))
}

/// `POST /tables/{t}/resumeConsumption[?consumeFrom=...&comment=...]`.
pub(super) async fn resume(
    State(s): State<Arc<Services>>,
    Path(name): Path<String>,
    Query(q): Query<ResumeParams>,
) -> Result<Json<PauseStatus>, ApiError> {
    let full = realtime_table(&s, &name).await?;
    Ok(Json(
        s.tables
            .resume(&full, q.consume_from.as_deref(), q.comment)
            .await?,
    ))
}

/// `GET /tables/{t}/pauseStatus`.
pub(super) async fn pause_status(
    State(s): State<Arc<Services>>,
    Path(name): Path<String>,
) -> Result<Json<PauseStatus>, ApiError> {
    let full = realtime_table(&s, &name).await?;
    Ok(Json(s.tables.pause_status(&full).await?))
}

/// `POST /tables/{t}/forceCommit[?partitions=0,1 | ?segments=a,b]`.
pub(super) async fn force_commit(
    State(s): State<Arc<Services>>,
    Path(name): Path<String>,
    Query(q): Query<ForceCommitParams>,
) -> Result<Json<ForceCommitResponse>, ApiError> {
    let full = realtime_table(&s, &name).await?;
    let partitions = q.partitions.as_deref().map(list);
    let segments = q.segments.as_deref().map(list);
    if partitions.is_some() && segments.is_some() {
        return Err(ApiError::bad_request(
            "Cannot specify both partitions and segments to commit",
        ));
    }
    let partitions = partitions
        .map(|ps| {
            ps.iter()
                .map(|p| {
                    p.parse::<u32>().map_err(|_| {
                        ApiError::bad_request(format!("partitions: '{p}' is not a partition id"))
                    })
                })
                .collect::<Result<Vec<u32>, ApiError>>()
        })
        .transpose()?;
    let job = s
        .tables
        .force_commit(&full, partitions.as_deref(), segments.as_deref())
        .await?;
    Ok(Json(ForceCommitResponse {
        force_commit_status: "SUCCESS",
        job_meta_zk_write_status: "SUCCESS",
        force_commit_job_id: job.job_id,
    }))
}

/// `GET /tables/forceCommitStatus/{job}`.
pub(super) async fn force_commit_status(
    State(s): State<Arc<Services>>,
    Path(job_id): Path<String>,
) -> Result<Json<ForceCommitStatusResponse>, ApiError> {
    let (job, waiting) = s
        .tables
        .force_commit_status(&job_id)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!("Failed to find controller job id: {job_id}"))
        })?;
    Ok(Json(ForceCommitStatusResponse::new(job, waiting)))
}

/// `GET /tables/{t}/consumingSegmentsInfo`: Pinot's shape, plus Riffle's partition state
/// and last error.
pub(super) async fn consuming_info(
    State(s): State<Arc<Services>>,
    Path(name): Path<String>,
) -> Result<Json<ConsumingSegmentsInfo>, ApiError> {
    let (raw, _) = table_in_path(&name)?;
    let full = raw.with_type(TableType::Realtime);
    let infos = s.tables.consuming_info(&full).await?;
    let map: BTreeMap<String, Vec<ConsumerInfo>> = infos
        .iter()
        .map(|c| {
            (
                c.segment.clone(),
                vec![ConsumerInfo::new(&s.server_name, c)],
            )
        })
        .collect();
    Ok(Json(ConsumingSegmentsInfo {
        servers_failing_to_respond: 0,
        servers_unparsable_respond: 0,
        segment_to_consuming_info_map: map,
    }))
}
