//! The envelope every prediction passes through, in one place: the method's own limits,
//! admission, resolution and routing (by the request's entity), the method's checks, the
//! run on the live version, the copy to shadow versions under the method's declared
//! [`ShadowPolicy`], and the observation (metrics by model, version, method and code).
//!
//! A method (V2 `ModelInfer`, `Churn/Score`, `Intent/Classify`, `Forecast`, `Recommend`)
//! says what it is with [`Method`]; [`Serving::call`] does the rest. A request about many
//! entities that a split may send to different versions (`Churn/Score`) goes through
//! [`Serving::call_split`]; a streamed batch (`ForecastBatch`, `RecommendBatch`) opens
//! its envelope with [`Serving::open`] and closes it when the stream ends. This is the
//! one place that sees every prediction with its version and route.

use std::future::Future;
use std::sync::Arc;

use super::{Admitted, Observation, Serving};
use crate::error::ServeError;
use crate::models::{LoadedModel, Placement, Routed};
use crate::serving::shadow::Predicts;

/// Whether a method's requests are copied to the shadow versions of their route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShadowPolicy {
    /// Each request is copied to the route's shadow versions after the live answer.
    Mirror,
    /// Never copied, for the reason given (written where the method is declared).
    Off(&'static str),
}

/// Where a request goes: the model and version it names (empty: the traffic split) and
/// the entity it is about, which places it on a split (the same entity, the same route).
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The model's name.
    pub model: &'a str,
    /// The version or alias asked for; empty for the split.
    pub version: &'a str,
    /// The entity the request is about, if it is about one.
    pub entity: Option<&'a str>,
}

/// Who is calling and under which request id: what the edge read off the call, for the
/// prediction log.
#[derive(Debug, Clone, Default)]
pub struct CallContext {
    /// The call's request id (the caller's `x-request-id`, or one made for it).
    pub request_id: Arc<str>,
    /// The authenticated caller, or "".
    pub principal: String,
    /// The route the log names when not the target's (`trigger`: a stream's re-score).
    pub route: Option<&'static str>,
}

/// A prediction method, as the envelope needs to know it.
pub trait Method: Clone + Send + Sync + 'static {
    /// What one version answers.
    type Request: Clone + Send + 'static;
    /// Its answer, comparable with a shadow's.
    type Answer: Predicts + Send + 'static;
    /// The `method` label of its metrics.
    const NAME: &'static str;
    /// Whether its requests are copied to shadow versions.
    const SHADOWS: ShadowPolicy;
    /// The `method` label of its shadow runs (its own, unless several methods share one).
    const SHADOW_NAME: &'static str = Self::NAME;

    /// Refuses a request over the method's configured limits, before it is admitted.
    fn limits(&self, _req: &Self::Request) -> Result<(), ServeError> {
        Ok(())
    }

    /// Checks the request once its model is known to exist (so that an unknown model is
    /// named before anything else is wrong), before it runs.
    fn validate(&self, _req: &Self::Request) -> Result<(), ServeError> {
        Ok(())
    }

    /// The copy of a request a shadow version answers (the request itself, unless the
    /// method asks shadows for less).
    fn shadow_copy(&self, req: &Self::Request) -> Self::Request {
        req.clone()
    }

    /// The instances of an answer, for the prediction log: one per customer, series day,
    /// row… with what each answered (by default one, with no outputs).
    fn instances(&self, _answer: &Self::Answer) -> Vec<crate::predlog::Instance> {
        vec![crate::predlog::Instance::default()]
    }

    /// Answers the request on one version.
    fn run(
        &self,
        serving: &Arc<Serving>,
        loaded: Arc<LoadedModel>,
        req: Self::Request,
    ) -> impl Future<Output = Result<Self::Answer, ServeError>> + Send;
}

/// An envelope opened for a streamed batch: admitted, routed and being observed until
/// [`Opened::close`] (or its drop, which records nothing: call `close`).
#[derive(Debug)]
pub struct Opened {
    /// The route the batch goes to, whole.
    pub routed: Routed,
    _admitted: Admitted,
    obs: Observation,
    ctx: CallContext,
    model: String,
    route: String,
}

/// How a streamed batch ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Every chunk was sent.
    Done,
    /// The caller went away.
    Cancelled,
    /// A chunk failed, ending the stream with this code.
    Failed(tonic::Code),
}

impl Ending {
    /// A batch ended by `error`.
    pub fn failed(error: &ServeError) -> Ending {
        Ending::Failed(error.code())
    }
}

impl Opened {
    /// Logs a chunk of the batch's answers: `instances` (asked only when the log is on),
    /// a row each, under the batch's request id and route.
    pub fn log(
        &self,
        serving: &Serving,
        instances: impl FnOnce() -> Vec<crate::predlog::Instance>,
    ) {
        self.log_rows(serving, || Ok(instances()));
    }

    /// Logs rows of the batch (see [`Serving::log_rows`]).
    fn log_rows(
        &self,
        serving: &Serving,
        outcome: impl FnOnce() -> Result<Vec<crate::predlog::Instance>, (tonic::Code, String)>,
    ) {
        let target = Target {
            model: &self.model,
            version: "",
            entity: None,
        };
        serving.log_rows(
            &self.ctx,
            self.obs.method(),
            &target,
            Some(&self.routed.live),
            self.route.clone(),
            self.obs.elapsed(),
            outcome,
        );
    }

    /// Records the batch's outcome (a failure also as a row of the log).
    pub fn close(self, serving: &Serving, ending: Ending) {
        let code = match ending {
            Ending::Done => tonic::Code::Ok,
            Ending::Cancelled => tonic::Code::Cancelled,
            Ending::Failed(code) => code,
        };
        if let Ending::Failed(code) = ending {
            self.log_rows(serving, || {
                Err((code, "the batch ended early at this error".to_string()))
            });
        }
        self.obs.finish(&serving.metrics, code);
    }
}

fn code_of<T>(result: &Result<T, ServeError>) -> tonic::Code {
    result
        .as_ref()
        .map_or_else(ServeError::code, |_| tonic::Code::Ok)
}

impl Serving {
    /// Runs one request through the envelope (see the module's doc).
    pub async fn call<M: Method>(
        self: &Arc<Self>,
        ctx: &CallContext,
        method: &M,
        target: Target<'_>,
        req: M::Request,
    ) -> Result<M::Answer, ServeError> {
        let mut obs = Observation::start(M::NAME);
        let result = self.enveloped(ctx, method, target, req, &mut obs).await;
        self.log_call(ctx, M::NAME, &target, &obs, || {
            result.as_ref().map(|a| method.instances(a))
        });
        obs.finish(&self.metrics, code_of(&result));
        result
    }

    /// Logs a call's rows, when the log is on: one per instance of its answer (`outcome`,
    /// asked only then), or one for its error; each with its request, the version that
    /// answered and the route that reached it, its outcome and its latency.
    fn log_call<'e>(
        &self,
        ctx: &CallContext,
        api: &'static str,
        target: &Target<'_>,
        obs: &Observation,
        outcome: impl FnOnce() -> Result<Vec<crate::predlog::Instance>, &'e ServeError>,
    ) {
        if self.log.is_none() {
            return;
        }
        let route = self.route_label(ctx, target);
        self.log_rows(
            ctx,
            api,
            target,
            obs.version(),
            route,
            obs.elapsed(),
            || outcome().map_err(|e| (e.code(), e.to_string())),
        );
    }

    /// How `target` reached its version, as the log names it: `pinned` (a number), the
    /// alias asked for, `split` or `champion`.
    fn route_label(&self, ctx: &CallContext, target: &Target<'_>) -> String {
        if let Some(route) = ctx.route {
            route.to_string()
        } else if !target.version.is_empty() {
            if target.version.parse::<u64>().is_ok() {
                "pinned".to_string()
            } else {
                target.version.to_string()
            }
        } else if self
            .models
            .snapshot()
            .models
            .get(target.model)
            .is_some_and(|e| !e.routes.is_empty())
        {
            "split".to_string()
        } else {
            mercator_registry::CHAMPION.to_string()
        }
    }

    /// Logs rows (see [`Serving::log_call`]) for a run of `latency` that just ended on
    /// the version `answered` (none when the call failed before one was resolved).
    #[expect(clippy::too_many_arguments, reason = "each is one column of the rows")]
    fn log_rows(
        &self,
        ctx: &CallContext,
        api: &'static str,
        target: &Target<'_>,
        answered: Option<&Arc<LoadedModel>>,
        route: String,
        latency: std::time::Duration,
        outcome: impl FnOnce() -> Result<Vec<crate::predlog::Instance>, (tonic::Code, String)>,
    ) {
        let Some(log) = &self.log else {
            return;
        };
        let manifest_share = answered.and_then(|m| m.sections.log_sampling);
        let Some(sampling_fraction) =
            log.sampled(target.model, api, manifest_share, &ctx.request_id)
        else {
            return;
        };
        let version = answered
            .map(|m| m.version_label.clone())
            .unwrap_or_default();
        let latency_micros = i64::try_from(latency.as_micros()).unwrap_or(i64::MAX);
        let (instances, code, error) = match outcome() {
            Ok(instances) => (instances, tonic::Code::Ok, String::new()),
            Err((code, error)) => (vec![crate::predlog::Instance::default()], code, error),
        };
        log.record(crate::predlog::Call {
            request_id: Arc::clone(&ctx.request_id),
            time_micros: chrono::Utc::now().timestamp_micros() - latency_micros,
            model: target.model.to_string(),
            version,
            route,
            api,
            principal: ctx.principal.clone(),
            entity: target.entity.unwrap_or_default().to_string(),
            code: crate::error::code_name(code),
            error,
            latency_micros,
            sampling_fraction,
            instances,
        });
    }

    /// [`Serving::call`] within `deadline`: past it the request is abandoned and
    /// answered DEADLINE_EXCEEDED (`what` names the deadline in the message).
    pub async fn call_within<M: Method>(
        self: &Arc<Self>,
        ctx: &CallContext,
        method: &M,
        target: Target<'_>,
        req: M::Request,
        deadline: std::time::Duration,
        what: &str,
    ) -> Result<M::Answer, ServeError> {
        let mut obs = Observation::start(M::NAME);
        let run = self.enveloped(ctx, method, target, req, &mut obs);
        let result = match tokio::time::timeout(deadline, run).await {
            Ok(answer) => answer,
            Err(_) => Err(ServeError::DeadlineExceeded(format!(
                "{what} of {:.3} s passed",
                deadline.as_secs_f64()
            ))),
        };
        self.log_call(ctx, M::NAME, &target, &obs, || {
            result.as_ref().map(|a| method.instances(a))
        });
        obs.finish(&self.metrics, code_of(&result));
        result
    }

    async fn enveloped<M: Method>(
        self: &Arc<Self>,
        ctx: &CallContext,
        method: &M,
        target: Target<'_>,
        req: M::Request,
        obs: &mut Observation,
    ) -> Result<M::Answer, ServeError> {
        method.limits(&req)?;
        let _admitted = self.admit()?;
        let routed = self.route(target.model, target.version, target.entity)?;
        obs.resolved(&routed.live);
        method.validate(&req)?;
        self.run_routed(ctx, method, target, &routed, req).await
    }

    /// Runs `req` on the routed live version, then copies it to the route's shadows when
    /// the method mirrors (each shadow's answer logged with the route `shadow`).
    async fn run_routed<M: Method>(
        self: &Arc<Self>,
        ctx: &CallContext,
        method: &M,
        target: Target<'_>,
        routed: &Routed,
        req: M::Request,
    ) -> Result<M::Answer, ServeError> {
        let copy =
            (M::SHADOWS == ShadowPolicy::Mirror && !routed.shadows.is_empty()).then(|| req.clone());
        let answer = method.run(self, Arc::clone(&routed.live), req).await?;
        if let Some(copy) = copy {
            let (owner, method, ctx) = (Arc::clone(self), method.clone(), ctx.clone());
            let (model, entity) = (
                target.model.to_string(),
                target.entity.map(ToString::to_string),
            );
            self.shadows.send(
                M::SHADOW_NAME,
                &routed.shadows,
                copy,
                &answer,
                move |shadow, req| {
                    let (serving, method, ctx) = (Arc::clone(&owner), method.clone(), ctx.clone());
                    let (model, entity) = (model.clone(), entity.clone());
                    async move {
                        let started = std::time::Instant::now();
                        let answered = Arc::clone(&shadow);
                        let result = method.run(&serving, shadow, req).await;
                        let target = Target {
                            model: &model,
                            version: "",
                            entity: entity.as_deref(),
                        };
                        serving.log_rows(
                            &ctx,
                            M::NAME,
                            &target,
                            Some(&answered),
                            "shadow".to_string(),
                            started.elapsed(),
                            || {
                                result
                                    .as_ref()
                                    .map(|a| method.instances(a))
                                    .map_err(|e| (e.code(), e.to_string()))
                            },
                        );
                        result
                    }
                },
            );
        }
        Ok(answer)
    }

    /// The envelope for a request about many entities (`keys`, one per entity) that a
    /// traffic split may send to different versions: each entity is placed by its key,
    /// the entities of each route are answered together (`part` makes the request for
    /// their indexes) and copied to that route's shadows; the answers come back per
    /// route, in order of first appearance. The observation names the first route's
    /// version.
    pub async fn call_split<M: Method>(
        self: &Arc<Self>,
        ctx: &CallContext,
        method: &M,
        target: Target<'_>,
        whole: &M::Request,
        keys: &[String],
        part: impl Fn(&[usize]) -> M::Request,
    ) -> Result<Vec<(Arc<LoadedModel>, Vec<usize>, M::Answer)>, ServeError> {
        let mut obs = Observation::start(M::NAME);
        let result = async {
            method.limits(whole)?;
            let _admitted = self.admit()?;
            self.models.resolve(target.model, target.version)?;
            method.validate(whole)?;
            let table = self.models.snapshot();
            let mut groups: Vec<(Routed, Vec<usize>)> = Vec::new();
            for (i, key) in keys.iter().enumerate() {
                let routed = table.route(target.model, target.version, |_| {
                    Placement::of_entity(target.model, key)
                })?;
                match groups
                    .iter_mut()
                    .find(|(r, _)| Arc::ptr_eq(&r.live, &routed.live))
                {
                    Some((_, members)) => members.push(i),
                    None => groups.push((routed, vec![i])),
                }
            }
            if let Some((first, _)) = groups.first() {
                obs.resolved(&first.live);
            }
            let mut answers = Vec::with_capacity(groups.len());
            for (routed, members) in groups {
                let answer = self
                    .run_routed(ctx, method, target, &routed, part(&members))
                    .await?;
                answers.push((routed.live, members, answer));
            }
            Ok(answers)
        }
        .await;
        self.log_call(ctx, M::NAME, &target, &obs, || {
            result.as_ref().map(|routes| {
                routes
                    .iter()
                    .flat_map(|(live, _, answer)| {
                        method.instances(answer).into_iter().map(|mut i| {
                            i.version.get_or_insert_with(|| live.version_label.clone());
                            i
                        })
                    })
                    .collect()
            })
        });
        obs.finish(&self.metrics, code_of(&result));
        result
    }

    /// Opens the envelope of a streamed batch `name`, which goes whole to one route (a
    /// batch has no one entity: the route is drawn at random) and is never copied to
    /// shadows (`policy` says why). A refusal here is recorded here; after it, the
    /// caller closes the envelope with the batch's outcome.
    pub fn open(
        &self,
        ctx: &CallContext,
        name: &'static str,
        policy: ShadowPolicy,
        target: Target<'_>,
    ) -> Result<Opened, ServeError> {
        debug_assert!(matches!(policy, ShadowPolicy::Off(_)));
        let mut obs = Observation::start(name);
        let opened = (|| {
            let admitted = self.admit()?;
            let routed = self.route(target.model, target.version, target.entity)?;
            obs.resolved(&routed.live);
            Ok((admitted, routed))
        })();
        match opened {
            Ok((admitted, routed)) => Ok(Opened {
                routed,
                _admitted: admitted,
                obs,
                ctx: ctx.clone(),
                model: target.model.to_string(),
                route: self.route_label(ctx, &target),
            }),
            Err(e) => {
                obs.finish(&self.metrics, ServeError::code(&e));
                Err(e)
            }
        }
    }
}
