//! The OpenAI wire format of chat completions and embeddings, shared by the client
//! ([`super::openai`]) and the mock server (`vsim::mock`) so that both read and write the
//! same envelope.
//!
//! Requests borrow what the client already holds ([`Cow`]) and own what a server reads.
//! Fields are declared in the order the bodies have always been written, so a request's
//! bytes are stable: the mock derives its replies from them. Responses are lenient where
//! servers differ (every field of a reply may be missing; a proxy may answer 200 with an
//! error object). A JSON schema is arbitrary JSON and stays a [`Value`].

use std::borrow::Cow;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::Message;

/// `POST /chat/completions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ChatCompletionRequest<'a> {
    /// The model to answer with.
    #[serde(default)]
    pub model: Cow<'a, str>,
    /// The conversation, oldest first.
    pub messages: Cow<'a, [Message]>,
    /// Sampling temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// Nucleus-sampling mass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    /// Cap on the reply's length, in tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Sampling seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// OpenAI accepts one string or a list; both are read, a list is written.
    #[serde(default, skip_serializing_if = "is_empty", deserialize_with = "one_or_many")]
    pub stop: Cow<'a, [String]>,
    /// The JSON shape the reply must take, when constrained.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_format: Option<ResponseFormat<'a>>,
}

// `skip_serializing_if` hands over a reference to the field itself.
#[allow(clippy::ptr_arg)]
fn is_empty(list: &Cow<'_, [String]>) -> bool {
    list.is_empty()
}

fn one_or_many<'de, 'a, D: Deserializer<'de>>(d: D) -> Result<Cow<'a, [String]>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<OneOrMany>::deserialize(d)? {
        None => Cow::Owned(Vec::new()),
        Some(OneOrMany::One(s)) => Cow::Owned(vec![s]),
        Some(OneOrMany::Many(v)) => Cow::Owned(v),
    })
}

impl ChatCompletionRequest<'_> {
    /// The JSON schema the reply must follow, when one was sent.
    pub fn schema(&self) -> Option<&Value> {
        self.response_format.as_ref()?.json_schema.as_ref().map(|s| s.schema.as_ref())
    }
}

/// `response_format`. Fields in the order serde_json's maps write them (`json_schema` before
/// `type`), as the client sent them before the envelope was typed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ResponseFormat<'a> {
    /// The schema, for [`ResponseFormatKind::JsonSchema`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json_schema: Option<JsonSchemaFormat<'a>>,
    /// `type`: which kind of output is asked for.
    #[serde(rename = "type")]
    pub kind: ResponseFormatKind,
}

impl<'a> ResponseFormat<'a> {
    /// A strict JSON-schema format named `name`.
    pub fn json_schema(name: impl Into<Cow<'a, str>>, schema: Cow<'a, Value>) -> Self {
        Self {
            json_schema: Some(JsonSchemaFormat { name: name.into(), schema, strict: Some(true) }),
            kind: ResponseFormatKind::JsonSchema,
        }
    }
}

/// `response_format.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ResponseFormatKind {
    /// Free text.
    Text,
    /// Any JSON object.
    JsonObject,
    /// JSON that follows the schema in `json_schema`.
    JsonSchema,
}

/// `response_format.json_schema`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct JsonSchemaFormat<'a> {
    /// A name for the schema.
    pub name: Cow<'a, str>,
    /// The JSON schema itself.
    pub schema: Cow<'a, Value>,
    /// Whether the server must follow the schema exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
}

/// A chat completion. Every field may be missing from what a server sends; the client
/// decides what it cannot do without.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct ChatCompletion {
    /// The server's identifier for the completion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The object type, `chat.completion`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// When the completion was made, in seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<u64>,
    /// The model that answered, as the server names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The replies; the client reads the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub choices: Option<Vec<Choice>>,
    /// Token counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<CompletionUsage>,
    /// Some proxies answer 200 with an error object instead of a completion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ReportedError>,
}

/// One choice of a completion.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    /// Position of the choice among the completion's choices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
    /// The assistant's message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<ReplyMessage>,
    /// Why generation stopped (`stop`, `length`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<String>,
}

/// The assistant message of a choice: its text, or a refusal.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReplyMessage {
    /// The author's role, `assistant`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The reply text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// The model's refusal message, when it declined to answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
}

/// `usage` of a completion.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CompletionUsage {
    /// Tokens in the request's messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens: Option<u64>,
    /// Tokens generated in the reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_tokens: Option<u64>,
    /// Prompt and completion tokens together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_tokens: Option<u64>,
}

impl CompletionUsage {
    /// Usage with its total filled in.
    pub fn new(prompt_tokens: u64, completion_tokens: u64) -> Self {
        Self {
            prompt_tokens: Some(prompt_tokens),
            completion_tokens: Some(completion_tokens),
            total_tokens: Some(prompt_tokens + completion_tokens),
        }
    }
}

/// An error a server reported: OpenAI's `{"message", "type"}` object, or whatever else a
/// proxy put there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub(crate) enum ReportedError {
    /// An OpenAI-style error object.
    Detail(ErrorDetail),
    /// Any other JSON, kept as it came.
    Other(Value),
}

impl ReportedError {
    /// The server's message, or the error as JSON when it has none.
    pub fn message(&self) -> String {
        match self {
            Self::Detail(d) => d.message.clone(),
            Self::Other(v) => v.to_string(),
        }
    }
}

/// The body of an error reply: `{"error": {"message": .., "type": ..}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

impl ErrorBody {
    /// An error of type `kind` saying `message`.
    pub fn new(kind: impl Into<String>, message: impl Into<String>) -> Self {
        Self { error: ErrorDetail { message: message.into(), kind: Some(kind.into()), code: None } }
    }
}

/// OpenAI's error object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ErrorDetail {
    /// Human-readable description.
    pub message: String,
    /// `type`: the error's class, e.g. `invalid_request_error`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// A machine-readable code; servers send strings or numbers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<Value>,
}

/// `POST /embeddings`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct EmbeddingsRequest<'a> {
    /// The embedding model.
    #[serde(default)]
    pub model: Cow<'a, str>,
    /// The texts to embed.
    pub input: EmbeddingInput<'a>,
    /// Length to truncate each vector to, for models that support it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<usize>,
}

/// The texts to embed: one string or a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub(crate) enum EmbeddingInput<'a> {
    /// A single text.
    One(Cow<'a, str>),
    /// Several texts, embedded in order.
    Many(Cow<'a, [String]>),
}

impl EmbeddingInput<'_> {
    /// The texts, in order.
    pub fn texts(&self) -> Vec<&str> {
        match self {
            Self::One(s) => vec![s.as_ref()],
            Self::Many(list) => list.iter().map(String::as_str).collect(),
        }
    }
}

/// An embeddings reply.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct EmbeddingsResponse {
    /// The object type, `list`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// One vector per input text.
    #[serde(default)]
    pub data: Vec<Embedding>,
    /// The model that embedded, as the server names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Token counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<EmbeddingsUsage>,
}

/// One vector of an embeddings reply; `index` places it (servers may reorder).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Embedding {
    /// The object type, `embedding`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// Position of the input text this vector belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
    /// The vector.
    pub embedding: Vec<f64>,
}

/// `usage` of an embeddings reply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct EmbeddingsUsage {
    /// Tokens in the input texts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens: Option<u64>,
    /// All tokens billed (equal to `prompt_tokens` for embeddings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_tokens: Option<u64>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_request_is_written_as_before_the_envelope_was_typed() {
        let messages = [Message::system("s"), Message::user("u")];
        let stop = ["END".to_string()];
        let schema = json!({"type": "object", "properties": {"b": {}, "a": {}}});
        let request = ChatCompletionRequest {
            model: Cow::Borrowed("m"),
            messages: Cow::Borrowed(&messages),
            temperature: Some(0.7),
            top_p: None,
            max_tokens: Some(9),
            seed: Some(42),
            stop: Cow::Borrowed(&stop),
            response_format: Some(ResponseFormat::json_schema("n", Cow::Owned(schema.clone()))),
        };
        let untyped = json!({
            "type": "json_schema",
            "json_schema": {"name": "n", "schema": schema, "strict": true},
        });
        let expected = format!(
            r#"{{"model":"m","messages":[{{"role":"system","content":"s"}},{{"role":"user","content":"u"}}],"temperature":0.7,"max_tokens":9,"seed":42,"stop":["END"],"response_format":{untyped}}}"#
        );
        let written = serde_json::to_string(&request).unwrap();
        assert_eq!(written, expected);
        let read: ChatCompletionRequest<'static> = serde_json::from_str(&written).unwrap();
        assert_eq!(read, request);
        assert_eq!(read.schema(), Some(&schema));
    }

    #[test]
    fn requests_are_read_leniently() {
        let r: ChatCompletionRequest =
            serde_json::from_str(r#"{"messages": [], "stop": "x", "seed": null}"#).unwrap();
        assert_eq!((r.model.as_ref(), r.stop.as_ref(), r.seed), ("", &["x".to_string()][..], None));
        assert!(r.schema().is_none());
        let r: ChatCompletionRequest =
            serde_json::from_str(r#"{"messages": [], "response_format": {"type": "json_object"}}"#).unwrap();
        assert!(r.schema().is_none());
        assert!(serde_json::from_str::<ChatCompletionRequest>(r#"{"model": "m"}"#).is_err());
    }

    #[test]
    fn reported_errors_keep_their_message() {
        let c: ChatCompletion = serde_json::from_str(r#"{"error": {"message": "overloaded"}}"#).unwrap();
        assert_eq!(c.error.unwrap().message(), "overloaded");
        let c: ChatCompletion = serde_json::from_str(r#"{"error": "busy", "choices": null}"#).unwrap();
        assert_eq!(c.error.unwrap().message(), r#""busy""#);
        let c: ChatCompletion = serde_json::from_str(r#"{"error": null}"#).unwrap();
        assert!(c.error.is_none());
        let body = serde_json::to_value(ErrorBody::new("rate_limit", "slow down")).unwrap();
        assert_eq!(body, json!({"error": {"message": "slow down", "type": "rate_limit"}}));
    }

    #[test]
    fn embeddings_take_one_text_or_many() {
        let r: EmbeddingsRequest = serde_json::from_str(r#"{"model": "e", "input": "a"}"#).unwrap();
        assert_eq!(r.input.texts(), ["a"]);
        let r: EmbeddingsRequest =
            serde_json::from_str(r#"{"model": "e", "input": ["a", "b"], "dimensions": 4}"#).unwrap();
        assert_eq!((r.input.texts(), r.dimensions), (vec!["a", "b"], Some(4)));
        assert!(serde_json::from_str::<EmbeddingsRequest>(r#"{"input": [1]}"#).is_err());
    }
}
