def get_user(request):
    user = load(request)
    if user is None:
        return None
    return user.to_dict()


def get_team(request):
    team = load_team(request)
    if team is None:
        return None
    return team.to_dict()


def get_project(request):
    project = load_project(request, cached=True)
    if project is None:
        raise NotFound("project")
    return project.to_dict()
