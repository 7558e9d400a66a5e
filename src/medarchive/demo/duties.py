"""Three months of discharges for the demo hospital, so completeness monitoring has something to show.

The HIS reports each discharge (as `listen hl7` does for ADT^A03); most discharge records then
arrive through the door, some late, some never. The events and records are real — they go through
the same services as production — but a demo cannot wait three months: the time each record was
received is set to when it *would* have arrived, which is the only synthetic part.
"""

from __future__ import annotations

import datetime as dt
import io
import random
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from medarchive.capture.duties import services as duties
from medarchive.capture.duties.models import Obligation
from medarchive.capture.intake import Item, receive
from medarchive.capture.models import Channel
from medarchive.capture.services import Description, IncomingFile
from medarchive.core import clock
from medarchive.demo.files import chinese_pdf, patient_name
from medarchive.security.models import User

WARDS = (("NK", "内科"), ("WK", "外科"))
DUE_DAYS = 7  # the shipped rule 出院病案7日内归档


@dataclass
class DutyHistory:
    discharges: int = 0
    on_time: int = 0
    late: int = 0
    missing: int = 0
    pending: int = 0


def _discharge_record(visit: str, patient: str, ward: str, day: dt.date) -> bytes:
    return chinese_pdf(
        "出院记录",
        [
            f"住院号：{visit}　患者：{patient}　科室：{ward}",
            f"出院日期：{day:%Y年%m月%d日}",
            "出院诊断：见病案首页。出院情况：好转。出院医嘱：按时服药，门诊随访。",
        ],
        author=f"{ward}住院医师",
        signed_on=day,
    )


def build_duty_history(*, interface: User, seed: int, per_month: int = 6, months: int = 3) -> DutyHistory:
    """Discharges over the last `months` months per ward: received on time, late, missing, not yet due."""
    rng = random.Random(seed * 7 + 1)  # noqa: S311 - synthetic demo data, not secrets
    today = clock.today()
    history = DutyHistory()
    for code, ward in WARDS:
        for n in range(per_month * months + 3):
            # The last three are in the past few days: not due yet, or already in.
            days_ago = rng.randint(1, 5) if n >= per_month * months else rng.randint(8, 30 * months)
            day = today - dt.timedelta(days=days_ago)
            visit = f"ZY{day:%Y%m}{code}{n + 1:03d}"
            occurred = timezone.make_aware(dt.datetime.combine(day, dt.time(10, rng.randint(0, 59))))
            duties.record_event(
                "discharge",
                department_code=code,
                subject_key=visit,
                subject_label=f"住院号 {visit}",
                occurred_at=occurred,
                actor=interface,
                source="HIS ADT^A03（演示）",
            )
            history.discharges += 1
            fate = rng.random()
            if days_ago <= DUE_DAYS:
                delay = rng.randint(0, days_ago - 1) if fate < 0.5 else None
            elif fate < 0.65:
                delay = rng.randint(1, DUE_DAYS)
            elif fate < 0.82:
                delay = rng.randint(DUE_DAYS + 2, min(DUE_DAYS + 25, days_ago))
            else:
                delay = None
            if delay is None:
                if days_ago <= DUE_DAYS:
                    history.pending += 1
                else:
                    history.missing += 1
                continue
            _receive(interface, code=code, ward=ward, visit=visit, day=day, rng=rng)
            received = occurred + dt.timedelta(days=delay, hours=rng.randint(1, 6))
            with transaction.atomic():
                Obligation.objects.filter(department__code=code, subject_key=visit).update(fulfilled_at=received)
            if delay <= DUE_DAYS:
                history.on_time += 1
            else:
                history.late += 1
    return history


def _receive(interface: User, *, code: str, ward: str, visit: str, day: dt.date, rng: random.Random) -> None:
    patient = patient_name(rng)
    desc = Description(
        class_code="BA-ZY",
        department_code=code,
        title="出院记录",
        date=day,
        responsible=f"{ward}",
        retention="MR30",
        security_level="内部",
        metadata={"visit_number": visit, "patient_name": patient, "discharge_date": day.isoformat()},
    )
    pdf = _discharge_record(visit, patient, ward, day)
    item = Item(desc, [IncomingFile(name=f"出院记录_{visit}.pdf", stream=io.BytesIO(pdf))], label=visit)
    outcome = receive([item], actor=interface, channel=Channel.REST, source="HIS").outcomes[0]
    if outcome.error is not None:
        raise outcome.error
