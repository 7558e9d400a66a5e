"""URLs of the web UI."""

from django.urls import include, path
from django.views.i18n import set_language

from medarchive.access import views as access_views
from medarchive.archiving import views as archiving_views
from medarchive.capture import views as capture_views
from medarchive.core import alias_views
from medarchive.core import views as core_views
from medarchive.preservation import views as preservation_views
from medarchive.security import admin_views, audit_views
from medarchive.security import views as security_views

urlpatterns = [
    path("", access_views.dashboard, name="dashboard"),
    path("login/", security_views.login_view, name="login"),
    path("logout/", security_views.logout_view, name="logout"),
    path("account/", security_views.my_account, name="my-account"),
    path("i18n/setlang/", set_language, name="set_language"),
    path("records/", access_views.record_list, name="record-list"),
    path("records/new/", capture_views.upload, name="record-new"),
    path("records/<uuid:record_id>/", access_views.record_detail, name="record-detail"),
    path("records/<uuid:record_id>/files/<int:sequence>/", access_views.download, name="record-file"),
    path("records/<uuid:record_id>/review/<str:step>/", capture_views.review_step, name="record-review"),
    path("records/<uuid:record_id>/<str:step>/", archiving_views.transition, name="record-transition"),
    path("review/", capture_views.review_queue, name="review-queue"),
    path("review/accept/", capture_views.review_bulk_accept, name="review-bulk-accept"),
    path("returned/", capture_views.returned_inbox, name="returned-inbox"),
    path("submissions/", capture_views.submission_list, name="submission-list"),
    path("submissions/<uuid:submission_id>/", capture_views.submission_detail, name="submission-detail"),
    path("duties/", include("medarchive.capture.duties.urls")),
    # the system administrator
    path("system/accounts/", admin_views.account_list, name="system-accounts"),
    path("system/accounts/<int:user_id>/", admin_views.account_edit, name="system-account-edit"),
    path("system/accounts/<int:user_id>/activation/", admin_views.account_activation, name="system-account-activation"),
    path("system/departments/", core_views.department_list, name="system-departments"),
    path("system/departments/<str:code>/", core_views.department_edit, name="system-department-edit"),
    path("system/tokens/", admin_views.token_list, name="system-tokens"),
    path("tokens/<int:token_id>/revoke/", admin_views.token_revoke, name="token-revoke"),
    path("system/storage/", preservation_views.storage, name="system-storage"),
    # the security administrator
    path("security/roles/", admin_views.role_list, name="security-roles"),
    path("security/roles/<int:user_id>/", admin_views.role_edit, name="security-role-edit"),
    path("security/lockouts/", admin_views.lockout_list, name="security-lockouts"),
    path("security/lockouts/unlock/", admin_views.lockout_unlock, name="security-unlock"),
    # the auditor
    path("audit/", audit_views.trail, name="audit-trail"),
    path("audit/verify/", audit_views.verify, name="audit-verify"),
    path("audit/export.csv", audit_views.export, name="audit-export"),
    path("departments/aliases/", alias_views.alias_list, name="department-aliases"),
    path("departments/aliases/<int:alias_id>/edit/", alias_views.alias_edit, name="department-alias-edit"),
    path("departments/aliases/<int:alias_id>/delete/", alias_views.alias_delete, name="department-alias-delete"),
]
