"""Policies in the portal, for admins only (technicians look devices up and read codes, nothing else)."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from policies import services
from policies.choices import PolicyKind
from policies.forms import AssignForm, PolicyForm
from policies.models import Policy
from policies.schema import SETTINGS
from policies.selectors import policy_assignments, policy_get, policy_list, tenant_members
from portal.access import ADMIN, member_required, safe_next


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _apply_errors(form, error: ValidationError) -> None:
    if not hasattr(error, "error_dict"):
        form.add_error(None, error.messages)
        return
    for field, field_errors in error.message_dict.items():
        form.add_error(field if field in form.fields else None, field_errors)


def _raised_text(raised: int) -> str:
    if not raised:
        return "No device's settings changed."
    return (
        f"{_plural(raised, 'device')} will get the change: at their next registration refresh, within an hour at most."
    )


@member_required(ADMIN)
def policy_index(request: HttpRequest) -> HttpResponse:
    services.policy_defaults_ensure(tenant=request.tenant)
    policies = list(policy_list(tenant=request.tenant))
    groups = [
        {"kind": kind, "label": label, "policies": [p for p in policies if p.kind == kind]}
        for kind, label in PolicyKind.choices
    ]
    return render(request, "policies/list.html", {"groups": groups})


@member_required(ADMIN, model=Policy)
def policy_detail(request: HttpRequest, pk: int) -> HttpResponse:
    policy = policy_get(tenant=request.tenant, pk=pk)
    return _detail(request, policy, AssignForm(members=tenant_members(tenant=request.tenant)))


def _detail(request: HttpRequest, policy, assign_form: AssignForm, status: int = 200) -> HttpResponse:
    values = [(s, s.display(policy.settings.get(s.key, s.default))) for s in SETTINGS[policy.kind]]
    context = {"policy": policy, "values": values, "assign_form": assign_form, **policy_assignments(policy=policy)}
    return render(request, "policies/detail.html", context, status=status)


@member_required(ADMIN)
def policy_create(request: HttpRequest, kind: str) -> HttpResponse:
    if kind not in PolicyKind.values:
        raise Http404
    form = PolicyForm(request.POST or None, kind=kind)
    if request.method == "POST" and form.is_valid():
        try:
            policy = services.policy_create(
                tenant=request.tenant, actor=request.actor, kind=kind, **form.service_data()
            )
        except ValidationError as error:
            _apply_errors(form, error)
        else:
            messages.success(request, f'"{policy}" was created. Assign it to users or devices, or make it the default.')
            return redirect("policies:detail", policy.pk)
    title = f"New {PolicyKind(kind).label.lower()} policy"
    return render(request, "policies/form.html", {"form": form, "title": title, "cancel": reverse("policies:list")})


@member_required(ADMIN, model=Policy)
def policy_edit(request: HttpRequest, pk: int) -> HttpResponse:
    policy = policy_get(tenant=request.tenant, pk=pk)
    initial = {"name": policy.name, "description": policy.description, **policy.settings}
    form = PolicyForm(request.POST or None, kind=policy.kind, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            before = policy.version
            policy, raised = services.policy_update(policy=policy, actor=request.actor, data=form.service_data())
        except ValidationError as error:
            _apply_errors(form, error)
        else:
            text = "Changes saved."
            if policy.version != before:
                text += " " + _raised_text(raised)
            messages.success(request, text)
            return redirect("policies:detail", policy.pk)
    context = {
        "form": form,
        "title": f"Edit {policy}",
        "policy": policy,
        "cancel": reverse("policies:detail", args=[policy.pk]),
    }
    return render(request, "policies/form.html", context)


@require_POST
@member_required(ADMIN, model=Policy)
def policy_delete(request: HttpRequest, pk: int) -> HttpResponse:
    policy = policy_get(tenant=request.tenant, pk=pk)
    try:
        raised = services.policy_delete(policy=policy, actor=request.actor)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("policies:detail", policy.pk)
    messages.success(request, f'"{policy}" was deleted. {_raised_text(raised)}')
    return redirect("policies:list")


@require_POST
@member_required(ADMIN, model=Policy)
def policy_make_default(request: HttpRequest, pk: int) -> HttpResponse:
    policy = policy_get(tenant=request.tenant, pk=pk)
    result = services.policy_assign(policy=policy, actor=request.actor, tenant_default=True)
    messages.success(
        request,
        f'"{policy}" is now the default {policy.get_kind_display().lower()} policy. {_raised_text(result.raised)}',
    )
    return redirect("policies:detail", policy.pk)


@require_POST
@member_required(ADMIN, model=Policy)
def policy_assign(request: HttpRequest, pk: int) -> HttpResponse:
    policy = policy_get(tenant=request.tenant, pk=pk)
    form = AssignForm(request.POST, members=tenant_members(tenant=request.tenant))
    if form.is_valid() and not (form.cleaned_data["users"] or form.macs()):
        form.add_error(None, "Choose users or enter MAC addresses.")
    if not form.is_valid():
        return _detail(request, policy, form, status=400)
    targets = []  # (what the message counts, the assignment)
    if users := form.cleaned_data["users"]:
        targets.append(("user", {"users": users}))
    if macs := form.macs():
        targets.append(("device", {"devices": macs}))
    try:
        results = services.policies_assign(actor=request.actor, assignments=[(policy, t) for _, t in targets])
    except ValidationError as error:
        _apply_errors(form, error)
        return _detail(request, policy, form, status=400)
    texts = [_plural(result.assigned, noun) for (noun, _), result in zip(targets, results, strict=True)]
    raised = sum(result.raised for result in results)
    messages.success(request, f'"{policy}" assigned to {" and ".join(texts)}. {_raised_text(raised)}')
    return redirect("policies:detail", policy.pk)


@require_POST
@member_required(ADMIN, model=Policy)
def policy_unassign(request: HttpRequest, pk: int) -> HttpResponse:
    policy = policy_get(tenant=request.tenant, pk=pk)
    device, user = request.POST.get("device", ""), request.POST.get("user", "")
    try:
        if device.isdigit():
            result = services.policy_unassign(policy=policy, actor=request.actor, devices=[int(device)])
        elif user.isdigit():
            result = services.policy_unassign(policy=policy, actor=request.actor, users=[int(user)])
        else:
            return HttpResponse("Name a device or a user.", status=400, content_type="text/plain")
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f'"{policy}" removed. {_raised_text(result.raised)}')
    return redirect("policies:detail", policy.pk)


@require_POST
@member_required(ADMIN)
def devices_assign(request: HttpRequest) -> HttpResponse:
    """From a selection in the inventory: choose a policy per kind, then assign them to the devices."""
    ids = sorted({int(i) for i in request.POST.getlist("ids") if i.isdigit()})
    next_url = safe_next(request, "devices:list")
    if not ids:
        messages.error(request, "Select devices first.")
        return redirect(next_url)
    services.policy_defaults_ensure(tenant=request.tenant)
    policies = list(policy_list(tenant=request.tenant))
    kinds = [
        {"kind": kind, "label": label, "policies": [p for p in policies if p.kind == kind]}
        for kind, label in PolicyKind.choices
    ]
    if request.POST.get("confirm"):
        by_pk = {str(p.pk): p for p in policies}
        chosen = [by_pk[v] for k in PolicyKind.values if (v := request.POST.get(f"policy_{k}", "")) in by_pk]
        if not chosen:
            messages.error(request, "Choose at least one policy to assign.")
        else:
            try:
                results = services.policies_assign(
                    actor=request.actor, assignments=[(p, {"devices": ids}) for p in chosen]
                )
                raised = [result.raised for result in results]
            except ValidationError as error:
                messages.error(request, " ".join(error.messages))
            else:
                names = ", ".join(f'"{p}"' for p in chosen)
                text = f"{names} assigned to {_plural(len(ids), 'device')}."
                if len(chosen) == 1:
                    text += f" {_raised_text(raised[0])}"
                else:  # a device may change with several kinds: say it per policy
                    counts = ", ".join(f'{_plural(n, "device")} by "{p}"' for p, n in zip(chosen, raised, strict=True))
                    text += f" Settings changed: {counts}; phones get them at their next registration refresh."
                messages.success(request, text)
                return redirect(next_url)
    return render(request, "policies/assign_devices.html", {"ids": ids, "kinds": kinds, "next": next_url})
