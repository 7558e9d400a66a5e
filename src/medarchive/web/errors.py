"""Error pages in the app's layout, in the user's language, and the one place where a domain error
that escapes a web view becomes a page (a refusal is audited here, whichever view it came from).

API and FHIR paths are left to their own error mapping (JSON Problem, OperationOutcome).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable

from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from medarchive.core.errors import MedarchiveError, NotAuthenticated, PermissionDenied

log = logging.getLogger(__name__)

MACHINE_PATHS = ("/api/", "/fhir/")

TITLES = {
    400: gettext_lazy("The request could not be understood"),
    403: gettext_lazy("Not allowed"),
    404: gettext_lazy("Page not found"),
    405: gettext_lazy("Not possible here"),
    409: gettext_lazy("Not possible in the current state"),
    413: gettext_lazy("Too large"),
    422: gettext_lazy("Please check your input"),
    500: gettext_lazy("Something went wrong"),
}
HINTS = {
    403: gettext_lazy("Your role does not allow this. Ask the archive or your administrator if you need it."),
    404: gettext_lazy("The address may be mistyped, or the item was moved or is not visible to you."),
    413: gettext_lazy("The file or form is larger than the archive accepts."),
    500: gettext_lazy("The error was recorded. Please try again later; if it happens again, tell the IT team."),
}


def error_page(request: HttpRequest, status: int, message: str = "") -> HttpResponse:
    title = TITLES.get(status, TITLES[400 if status < 500 else 500])
    context = {
        "reference": getattr(request, "error_reference", ""),
        "status": status,
        "title": title,
        "message": message,
        "hint": HINTS.get(status, ""),
        "back": _same_site_referer(request),
    }
    return render(request, "errors/page.html", context, status=status)


def _same_site_referer(request: HttpRequest) -> str:
    referer = request.META.get("HTTP_REFERER", "")
    if (
        referer
        and referer != request.build_absolute_uri()
        and url_has_allowed_host_and_scheme(referer, allowed_hosts={request.get_host()})
    ):
        return referer
    return ""


class DomainErrorMiddleware:
    """A MedarchiveError that escapes a web view becomes its styled page, never a 500."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if isinstance(response, HttpResponseNotAllowed) and not request.path.startswith(MACHINE_PATHS):
            styled = error_page(request, 405)
            styled["Allow"] = response["Allow"]
            return styled
        return response

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        if request.path.startswith(MACHINE_PATHS):
            return None
        if not isinstance(exc, MedarchiveError):
            # A fault: Django logs it and renders server_error; the page names this reference, the log too.
            reference = secrets.token_hex(4)
            request.error_reference = reference  # type: ignore[attr-defined]
            log.error("%s %s failed, reference %s", request.method, request.path, reference, exc_info=exc)
            return None
        if isinstance(exc, NotAuthenticated):
            return HttpResponseRedirect(f"/login/?next={request.path}")
        if isinstance(exc, PermissionDenied):
            from medarchive.security import audit  # noqa: PLC0415 - models load after this module

            audit.record_refusal(exc)
        if exc.status >= 500:
            log.error("%s %s: %s (%s)", request.method, request.path, exc.code, exc.message)
        return error_page(request, exc.status, exc.message)


# Django's handlers (urls.py): handler400/403/404/500.


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if isinstance(exception, RequestDataTooBig | TooManyFieldsSent | TooManyFilesSent):
        return error_page(request, 413)
    return error_page(request, 400)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_page(request, 403)


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_page(request, 404)


def server_error(request: HttpRequest) -> HttpResponse:
    """The 500 page; if even the layout cannot render (database down), a plain page that still says it."""
    try:
        return error_page(request, 500)
    except Exception:  # the last line of defence must not raise
        log.exception("the error page itself failed")
        return HttpResponse(_FALLBACK, status=500, content_type="text/html; charset=utf-8")


_FALLBACK = (
    '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>出错了 · medarchive</title></head>'
    "<body><h1>出错了</h1><p>错误已记录，请稍后重试；如果再次出现，请联系信息科。</p>"
    '<p lang="en">Something went wrong. The error was recorded; please try again later.</p>'
    '<p><a href="/">返回工作台 · Back to the dashboard</a></p></body></html>'
)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    return error_page(
        request, 403, _("The form expired or came from elsewhere. Go back, reload the page and try again.")
    )
