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
    project = load_project(request)
    if project is None:
        return None
    return project.to_dict()
