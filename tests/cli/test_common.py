import pytest

from pallet.cli.common import human_ago, human_duration, human_size


@pytest.mark.parametrize("secs,text", [
    (0.5, "Less than a second"), (1, "1 second"), (59, "59 seconds"), (60, "About a minute"),
    (119, "About a minute"), (120, "2 minutes"), (3599, "59 minutes"), (3600, "About an hour"),
    (5399, "About an hour"), (5400, "2 hours"), (47 * 3600, "47 hours"), (48 * 3600, "2 days"),
    (14 * 86400, "2 weeks"), (60 * 86400, "2 months"), (800 * 86400, "2 years"),
])
def test_human_duration_matches_docker(secs, text):
    assert human_duration(secs) == text


def test_human_ago_and_size():
    assert human_ago(100.0, now=103.0) == "3 seconds ago"
    assert human_size(2140160) == "2.14MB"
    assert human_size(999) == "999B"
    assert human_size(1000) == "1kB"


def test_table_format_has_dockers_headers_and_alignment(capsys):
    from pallet.cli.common import print_formatted
    from pallet.cli.container import _render_template

    objs = [{"ID": "31fe13e28dd0", "Names": "api", "RunningFor": "2 minutes ago"},
            {"ID": "a1b2c3d4e5f6", "Names": "a-longer-name", "RunningFor": "1 hour ago"}]
    print_formatted("table {{.ID}}\\t{{.Names}}\\t{{.RunningFor}}", objs, _render_template,
                    id_header="CONTAINER ID")
    assert capsys.readouterr().out.splitlines() == [
        "CONTAINER ID   NAMES           CREATED",
        "31fe13e28dd0   api             2 minutes ago",
        "a1b2c3d4e5f6   a-longer-name   1 hour ago",
    ]
    print_formatted("table {{.Names}}", objs, _render_template)
    assert capsys.readouterr().out.splitlines() == ["NAMES", "api", "a-longer-name"]
    print_formatted("{{.Names}}", objs, _render_template)
    assert capsys.readouterr().out.splitlines() == ["api", "a-longer-name"]


def test_table_format_header_overrides(capsys):
    from pallet.cli.common import print_formatted
    from pallet.cli.images import render_template

    print_formatted("table {{.Name}}\\t{{.Driver}}", [{"Name": "data", "Driver": "local"}], render_template,
                    headers={"Name": "VOLUME NAME"})
    assert capsys.readouterr().out.splitlines() == ["VOLUME NAME   DRIVER", "data          local"]
