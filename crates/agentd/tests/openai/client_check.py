"""Drives a running agentd with the official `openai` Python client.

Usage: client_check.py BASE_URL API_KEY CHAT_MODEL EMBEDDING_MODEL

Prints one JSON object with what it saw, for the Rust test to check; any
client error propagates as a non-zero exit with the traceback on stderr.
"""

import json
import math
import sys

import openai
from openai import OpenAI

base_url, api_key, chat_model, embedding_model = sys.argv[1:5]
client = OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=120)
seen = {"openai_version": openai.__version__}

seen["models"] = sorted(m.id for m in client.models.list())

# The client asks for base64 vectors by default and decodes them itself.
embeddings = client.embeddings.create(model=embedding_model, input=["The cat sat on the mat.", "A kitten rests on a rug.", "Stock markets fell sharply."])
vectors = [d.embedding for d in embeddings.data]
seen["embedding_dims"] = [len(v) for v in vectors]
seen["embedding_norms"] = [math.sqrt(sum(x * x for x in v)) for v in vectors]
dot = lambda a, b: sum(x * y for x, y in zip(a, b))
seen["similar_beats_unrelated"] = dot(vectors[0], vectors[1]) > dot(vectors[0], vectors[2])
seen["embedding_usage"] = embeddings.usage.prompt_tokens
floats = client.embeddings.create(model=embedding_model, input="The cat sat on the mat.", encoding_format="float")
seen["float_matches_base64"] = max(abs(a - b) for a, b in zip(floats.data[0].embedding, vectors[0])) < 1e-6

messages = [{"role": "user", "content": "Say hello in one short sentence."}]
completion = client.chat.completions.create(model=chat_model, messages=messages, max_tokens=16, temperature=0)
seen["completion"] = {
    "text": completion.choices[0].message.content,
    "finish_reason": completion.choices[0].finish_reason,
    "usage": completion.usage.model_dump(),
}

stream = client.chat.completions.create(
    model=chat_model, messages=messages, max_tokens=16, temperature=0, stream=True, stream_options={"include_usage": True}
)
pieces, finish, usage = [], None, None
for chunk in stream:
    if chunk.usage is not None:
        usage = chunk.usage.model_dump()
    for choice in chunk.choices:
        if choice.delta.content:
            pieces.append(choice.delta.content)
        if choice.finish_reason:
            finish = choice.finish_reason
seen["stream"] = {"pieces": len(pieces), "text": "".join(pieces), "finish_reason": finish, "usage": usage}

try:
    client.chat.completions.create(model="no-such-model", messages=messages)
    seen["unknown_model"] = "accepted"
except openai.NotFoundError as e:
    seen["unknown_model"] = {"status": e.status_code, "code": e.code, "type": e.type}

try:
    OpenAI(base_url=base_url, api_key="agd_wrong", max_retries=0).models.list()
    seen["bad_key"] = "accepted"
except openai.AuthenticationError as e:
    seen["bad_key"] = {"status": e.status_code}

print(json.dumps(seen))
