"""The bare limit for intake's HTTP side: FastAPI with one POST handler, a pydantic body like
intake's assessment, nothing else (no auth, database, middleware or tracing), served by
uvicorn with the same settings as `python -m <service> serve`.

    python bench/bare_app.py PORT
"""

from __future__ import annotations

import sys
import uuid
from datetime import date

import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

app = FastAPI()


class AssessmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    instrument: str
    score: int
    item9: int | None = None
    taken_on: date


@app.post("/v1/patients/{patient_id}/assessments", status_code=201)
async def record(patient_id: str, body: AssessmentIn) -> JSONResponse:
    return JSONResponse(
        {"id": str(uuid.uuid4()), "patient_id": patient_id, **body.model_dump(mode="json")}, status_code=201
    )


@app.get("/readyz")
async def readyz() -> dict[str, str]:
    return {"status": "ready"}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_config=None, access_log=False)
