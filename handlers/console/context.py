"""What a console page is given: the request as the pages need it, and who is asking."""
from __future__ import annotations

from dataclasses import dataclass, field

from . import auth

BASE = "/api/console"


@dataclass
class Ctx:
    method: str
    path: str
    url: str
    params: dict
    headers: dict
    who: auth.Principal
    sid: str
    form: dict = field(default_factory=dict)
    token: str = ""

    @property
    def secure(self) -> bool:
        return self.url.startswith("https://") or not self.who.local
