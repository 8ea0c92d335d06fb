"""The thin ``blobforge`` commands (status, jobs, retry, cancel, stats, workers): tables, --json, exit codes, config."""

import shutil

from tests.components.client import cli_env, last_json, run_cli


def test_status_jobs_cancel_retry_stats_and_workers(server, fixture_pdfs, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ("crazyones.pdf", "example.pdf"):
        shutil.copy(fixture_pdfs / name, docs / name)
    server.create_worker("gpu-01")
    token = server.create_token("read,submit,operate")
    assert run_cli(server, token, "ingest", str(docs)).returncode == 0

    jobs = last_json(run_cli(server, token, "jobs", "--json"))
    assert sorted(job["filename"] for job in jobs) == ["crazyones.pdf", "example.pdf"]
    table = run_cli(server, token, "jobs", "--status", "pending").stdout.splitlines()
    assert table[0].split()[:3] == ["ID", "STATUS", "PRI"] and len(table) == 3
    by_name = {job["filename"]: job["id"] for job in jobs}

    by_path = last_json(run_cli(server, token, "status", str(docs), "--json"))
    assert {row["path"].rsplit("/", 1)[1]: row["job"]["id"] for row in by_path} == by_name

    cancelled = run_cli(server, token, "cancel", str(by_name["example.pdf"]), "999999", "--json")
    assert cancelled.returncode == 1
    result = last_json(cancelled)
    assert [job["status"] for job in result["jobs"]] == ["cancelled"]
    assert result["problems"][0]["path"] == "999999"

    detail = run_cli(server, token, "status", str(by_name["example.pdf"]))
    assert detail.returncode == 0 and "cancelled" in detail.stdout
    assert (
        last_json(run_cli(server, token, "retry", str(by_name["example.pdf"]), "--json"))["jobs"][0]["status"]
        == "pending"
    )

    stats = last_json(run_cli(server, token, "stats", "--json"))
    assert stats["by_status"]["pending"] == 2
    assert "pending 2" in run_cli(server, token, "status").stdout
    workers = run_cli(server, token, "workers")
    assert workers.returncode == 0 and "gpu-01" in workers.stdout
    assert run_cli(server, token, "status", "999999").returncode == 1


def test_operate_commands_need_the_operate_scope(server):
    token = server.create_token("read")
    done = run_cli(server, token, "cancel", "1")
    assert done.returncode == 2
    assert "lacks the 'operate' scope" in done.stderr


def test_config_file_and_usage_errors(server, tmp_path):
    token = server.create_token("read")
    config_home = tmp_path / "config"
    (config_home / "blobforge").mkdir(parents=True)
    (config_home / "blobforge/client.toml").write_text(f'server_url = "{server.base_url}"\napi_token = "{token}"\n')
    env = cli_env(server, token, XDG_CONFIG_HOME=str(config_home))
    del env["BLOBFORGE_SERVER_URL"], env["BLOBFORGE_API_TOKEN"]
    assert run_cli(server, token, "stats", env=env).returncode == 0

    (config_home / "blobforge/client.toml").unlink()
    missing = run_cli(server, token, "stats", env=env)
    assert missing.returncode == 2 and "BLOBFORGE_SERVER_URL" in missing.stderr
    assert run_cli(server, token, "jobs", "--status", "bogus").returncode == 2
    assert run_cli(server, token, "ingest", str(tmp_path / "nope")).returncode == 2
    for command in ("ingest", "status", "jobs", "retry", "cancel", "stats", "workers", "hydrate"):
        helped = run_cli(server, token, command, "--help")
        assert helped.returncode == 0 and f"blobforge {command}" in helped.stdout
