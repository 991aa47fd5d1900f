"""The approver sees which request they approve: two requests for the very same action (same
tool, same arguments) reach the authenticator with different binding messages, and a file name
with a look-alike character is shown with it escaped, not silently cleaned up."""

from __future__ import annotations

from tests.approvals.conftest import pending_interrupt, saved_graph


async def test_identical_requests_show_different_binding_messages(world, tmp_path) -> None:
    a = {"configurable": {"thread_id": "same-a-" + world.marker[-8:]}}
    b = {"configurable": {"thread_id": "same-b-" + world.marker[-8:]}}
    async with saved_graph(tmp_path / "cp.sqlite") as graph:
        first = pending_interrupt(await graph.ainvoke(world.ask("same.md"), a, context=world.ctx))
        second = pending_interrupt(await graph.ainvoke(world.ask("same.md"), b, context=world.ctx))
    one, two = await world.record(first["approval_id"]), await world.record(second["approval_id"])
    assert one.action_digest == two.action_digest  # the very same action
    assert first["binding_message"] != second["binding_message"]
    assert first["binding_message"].startswith(
        f"Create public gist same.md #{one.action_digest[:6]} "
    )
    # What the provider shows the user is that same, distinct text.
    [pushed_one, pushed_two] = sorted(
        world.pushes(one.action_digest), key=lambda r: r.binding_message != one.binding_message
    )
    assert pushed_one.binding_message == first["binding_message"]
    assert pushed_two.binding_message == second["binding_message"]


async def test_a_look_alike_character_in_the_file_name_is_shown(world, tmp_path, thread_config):
    async with saved_graph(tmp_path / "cp.sqlite") as graph:
        out = await graph.ainvoke(world.ask("n\u043etes.md"), thread_config, context=world.ctx)
    payload = pending_interrupt(out)
    assert payload["binding_message"].startswith("Create public gist nU+043Etes.md #")
    [pushed] = world.pushes((await world.record(payload["approval_id"])).action_digest)
    assert "nU+043Etes.md" in pushed.binding_message
