"""The console's words in English and Chinese: :func:`translator` gives the lookup of one
language, :func:`pick_language` chooses it from the ``lang`` cookie or ``Accept-Language``."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["LANGUAGES", "STRINGS", "pick_language", "translator"]

LANGUAGES = ("en", "zh")

#: key → (English, Chinese)
STRINGS: dict[str, tuple[str, str]] = {
    "title": ("idnode console", "idnode 控制台"),
    "skip": ("Skip to content", "跳到正文"),
    "nav.resolve": ("Resolve", "解析"),
    "nav.admin": ("Administration", "企业管理"),
    "nav.dashboard": ("Dashboard", "节点概况"),
    "nav.login": ("Log in", "登录"),
    "nav.logout": ("Log out", "退出"),
    "lang.switch": ("中文", "English"),
    "resolve.heading": ("Resolve an identifier", "解析标识"),
    "resolve.label": (
        "Handle, hdl:/doi: name, GS1 Digital Link or scanned code",
        "标识、hdl:/doi: 名称、GS1 数字链接或扫码内容",
    ),
    "resolve.button": ("Resolve", "解析"),
    "resolve.examples": ("Examples", "示例"),
    "resolve.unknown": ("No such identifier", "标识不存在"),
    "resolve.bad": ("Not an identifier", "无法识别的输入"),
    "id.attributes": ("Attributes", "属性"),
    "id.attribute": ("Attribute", "属性"),
    "id.value": ("Value", "值"),
    "id.other": ("Other values", "其他数据"),
    "id.index": ("Index", "索引"),
    "id.type": ("Type", "类型"),
    "id.template": ("Template", "模板"),
    "id.version": ("version", "版本"),
    "id.none": ("Nothing here is visible to you.", "没有您可查看的数据。"),
    "id.history": ("History", "历史"),
    "id.history.hidden": (
        "The history is shown to administrators of the identifier.",
        "历史记录仅对该标识的管理员可见。",
    ),
    "id.trace": ("Trace graph", "追溯图"),
    "id.remote": ("Read from another node", "来自其他节点"),
    "id.viewer": ("Viewing as", "当前身份"),
    "id.anonymous": ("anonymous", "匿名"),
    "hist.date": ("Date", "时间"),
    "hist.action": ("Action", "操作"),
    "hist.actor": ("By", "操作者"),
    "hist.origin": ("From", "来源"),
    "trace.heading": ("Trace", "追溯"),
    "trace.up": ("upstream", "上游"),
    "trace.down": ("downstream", "下游"),
    "trace.both": ("both", "双向"),
    "trace.depth": ("Depth", "深度"),
    "trace.direction": ("Direction", "方向"),
    "trace.show": ("Show", "显示"),
    "trace.hint": (
        "Select a node to expand it; its link opens the identifier.",
        "点击节点展开其上下游；链接打开标识详情。",
    ),
    "trace.truncated": ("The graph was cut at its node limit.", "节点过多，图已截断。"),
    "trace.nodes": ("Nodes", "节点"),
    "trace.edges": ("Links", "关联"),
    "trace.expand": ("Expand", "展开"),
    "login.heading": ("Log in", "登录"),
    "login.username": ("Username", "用户名"),
    "login.password": ("Password", "密码"),
    "login.failed": ("Wrong username or password", "用户名或密码错误"),
    "login.unavailable": ("This node keeps no accounts.", "本节点未启用账户。"),
    "login.needed": ("Log in to see this page.", "请先登录。"),
    "admin.heading": ("Enterprise administration", "企业管理"),
    "admin.account": ("Account", "账户"),
    "admin.role": ("Role", "角色"),
    "admin.enterprise": ("Enterprise", "企业"),
    "admin.identity": ("Identity", "身份"),
    "admin.templates": ("Templates", "模板"),
    "admin.prefixes": ("Prefixes", "前缀"),
    "admin.registrations": ("Registrations", "标识注册"),
    "admin.register": ("Register an identifier", "注册标识"),
    "admin.grants": ("Grants", "数据授权"),
    "admin.apps": ("Apps and keys", "应用身份与密钥"),
    "admin.import": ("Bulk import", "批量导入"),
    "admin.forbidden": ("Your account may not do this.", "您的账户无此权限。"),
    "tpl.new": ("New template", "新建模板"),
    "tpl.prefix": ("Prefix", "前缀"),
    "tpl.version": ("Template name (version)", "模板版本名"),
    "tpl.name_zh": ("Chinese name", "中文名称"),
    "tpl.name_en": ("English name", "英文名称"),
    "tpl.key": ("Key", "英文标识"),
    "tpl.type": ("Data type", "数据类型"),
    "tpl.required": ("Required", "必填"),
    "tpl.add_row": ("Add attribute", "添加属性"),
    "tpl.create": ("Create and publish", "创建并发布"),
    "tpl.created": ("Template created", "模板已创建"),
    "tpl.edit": ("Edit template", "编辑模板"),
    "tpl.add": ("Add attributes (publishes a new version)", "添加属性（发布新版本）"),
    "tpl.publish_new": ("Add and publish", "添加并发布"),
    "tpl.published": ("Published", "已发布"),
    "tpl.status": ("Status", "状态"),
    "tpl.list": ("Templates of your prefixes", "本企业前缀下的模板"),
    "tpl.none": ("No templates yet.", "暂无模板。"),
    "reg.template": ("Template", "模板"),
    "reg.choose": ("Choose", "选择"),
    "reg.handle": ("Identifier", "标识"),
    "reg.url": ("Link (URL, optional)", "链接（URL，可选）"),
    "reg.submit": ("Register", "注册"),
    "reg.done": ("Registered", "注册成功"),
    "list.filter": ("Filter", "筛选"),
    "list.prefix": ("Prefix", "前缀"),
    "list.contains": ("Contains", "包含"),
    "list.prev": ("Previous", "上一页"),
    "list.next": ("Next", "下一页"),
    "list.page": ("Page", "页"),
    "list.total": ("identifiers", "个标识"),
    "list.template": ("Template", "模板"),
    "list.any": ("any", "全部"),
    "grant.heading": ("Who may view each attribute", "各属性的查看授权"),
    "grant.identifier": (
        "Who may view all attributes of this identifier",
        "可查看本标识全部属性的身份",
    ),
    "grant.scope": ("Viewers", "查看范围"),
    "grant.default": ("as the value says", "按数据自身权限"),
    "grant.public": ("everyone", "所有人"),
    "grant.specified": ("listed identities", "指定身份"),
    "grant.users": ("Identities (index:handle, one per line)", "身份（index:handle，每行一个）"),
    "grant.save": ("Save grants", "保存授权"),
    "grant.saved": ("Grants saved", "授权已保存"),
    "prefix.state": ("State", "状态"),
    "prefix.hosted": ("Hosted here", "本节点托管"),
    "prefix.actions": ("Actions", "操作"),
    "prefix.apply": ("Apply for a prefix", "申请前缀"),
    "prefix.approve": ("Approve", "批准"),
    "prefix.activate": ("Activate", "启用"),
    "prefix.suspend": ("Suspend", "暂停"),
    "prefix.resume": ("Resume", "恢复"),
    "prefix.cancel": ("Cancel", "注销"),
    "apps.none": ("No app identities.", "暂无应用身份。"),
    "apps.keys": ("Keys on the identity handle", "身份标识上的密钥"),
    "apps.new": ("New app identity", "新建应用身份"),
    "apps.create": ("Create the app account", "创建应用账户"),
    "apps.created": ("App account created", "应用账户已创建"),
    "apps.new_hint": (
        "The app gets an identity handle of its own, <prefix>/APP.<username>, under the "
        "enterprise's active prefix, holding its public key; it writes under the "
        "enterprise's prefixes.",
        "应用将在企业的启用前缀下获得自己的身份标识 <前缀>/APP.<用户名>，其中保存其公钥；"
        "应用可在企业前缀下写入标识。",
    ),
    "apps.app": ("App", "应用"),
    "apps.state": ("State", "状态"),
    "apps.enabled": ("Enabled", "已启用"),
    "apps.disabled": ("Disabled", "已停用"),
    "apps.key": ("Key", "密钥"),
    "apps.generate": ("Make a key pair here (RSA 2048)", "由节点生成密钥对（RSA 2048）"),
    "apps.paste": ("Use my public key (PEM)", "使用我的公钥（PEM）"),
    "apps.public_key": ("Public key (PEM, RSA or DSA)", "公钥（PEM，RSA 或 DSA）"),
    "apps.not_kept": (
        "A key pair made here: its private key is shown to you once, to download, and is "
        "never stored on the node.",
        "由节点生成时：私钥只向您显示一次供下载，节点不保存私钥。",
    ),
    "apps.private_key": ("Private key", "私钥"),
    "apps.once": (
        "Download the private key now: this is the only time it is shown. The node does not "
        "keep it; if it is lost, add a new key and revoke this one.",
        "请立即下载私钥：仅显示这一次。节点不保存私钥；如丢失，请添加新密钥并吊销此密钥。",
    ),
    "apps.download": ("Download the private key", "下载私钥"),
    "apps.fingerprint": ("Fingerprint (SHA-256)", "指纹（SHA-256）"),
    "apps.not_own": (
        "This app acts as an identity that is not its own handle: its keys are managed there.",
        "该应用使用的身份不是其自有标识，密钥在该身份处管理。",
    ),
    "apps.revoke": ("Revoke", "吊销"),
    "apps.add_key": ("Add a key", "添加密钥"),
    "apps.rotation": (
        "Key rotation: add the new key, switch the app to it (it works with either key), "
        "then revoke the old one.",
        "密钥轮换：先添加新密钥，将应用切换到新密钥（新旧密钥均可用），再吊销旧密钥。",
    ),
    "apps.key_added": ("Key added at index", "密钥已添加，索引"),
    "apps.key_revoked": ("Key revoked at index", "密钥已吊销，索引"),
    "apps.disable": ("Disable the app", "停用应用"),
    "apps.enable": ("Enable the app", "启用应用"),
    "apps.disable_hint": (
        "Disabling blocks its logins and tokens, removes it from the enterprise's admin "
        "group and disables its keys.",
        "停用后其登录和令牌失效，退出企业管理组，其密钥停用。",
    ),
    "apps.enable_hint": (
        "Enabling restores its login, its group membership and its keys.",
        "启用后恢复其登录、管理组成员身份和密钥。",
    ),
    "import.file": ("CSV or JSON Lines file", "CSV 或 JSON Lines 文件"),
    "import.start": ("Upload and import", "上传并导入"),
    "import.progress": ("Import progress", "导入进度"),
    "import.rows": ("rows", "行"),
    "import.created": ("created", "新建"),
    "import.existing": ("existing", "已存在"),
    "import.failed": ("failed", "失败"),
    "import.done": ("Finished", "完成"),
    "import.running": ("Running", "进行中"),
    "import.error": ("Stopped with an error", "导入出错"),
    "import.errors": ("Rows refused", "被拒绝的行"),
    "import.pids": ("started by process, this process", "启动进程、当前进程"),
    "import.unknown": (
        "This process of the node does not know this import. Imports are followed only by "
        "the process that runs them: it was started by another worker process of the node, "
        "or before the node restarted (an import cut by a restart stops; rows it committed "
        "stay, and importing the file again skips them). Reload to ask again, or look the "
        "identifiers up.",
        "节点的当前进程不知道此导入任务。导入进度只由运行它的进程跟踪：它由节点的另一个工作"
        "进程启动，或在节点重启前启动（重启会中断导入；已提交的行会保留，重新导入同一文件会跳过"
        "它们）。请刷新重试，或直接查询标识。",
    ),
    "dash.heading": ("Node dashboard", "节点概况"),
    "dash.registrations": ("Registrations per day", "每日注册量"),
    "dash.resolutions": ("Resolutions per day", "每日解析量"),
    "dash.top": ("Top prefixes", "活跃前缀"),
    "dash.res": ("Resolutions", "解析量"),
    "dash.reg": ("Registrations", "注册量"),
    "dash.cache": ("Resolver cache hit rate", "解析缓存命中率"),
    "dash.nocache": ("no resolver configured", "未配置递归解析"),
    "dash.peers": ("Peers", "上下级节点"),
    "dash.up": ("reachable", "可达"),
    "dash.down": ("unreachable", "不可达"),
    "dash.nopeers": ("No peers configured.", "未配置上下级节点。"),
    "dash.total": ("Total", "合计"),
    "dash.all": ("all prefixes", "全部前缀"),
    "dash.days": ("Last 14 days", "最近 14 天"),
    "error.heading": ("Something is wrong", "出错了"),
    "error.back": ("Back to the console", "返回控制台"),
    "csrf": ("The form expired; load the page again.", "表单已失效，请刷新页面后重试。"),
}


def pick_language(cookie: str | None, accept_language: str) -> str:
    """``cookie`` when it names a language, else Chinese when the browser prefers it."""
    if cookie in LANGUAGES:
        return cookie
    first = accept_language.split(",", 1)[0].strip().lower()
    return "zh" if first.startswith("zh") else "en"


def translator(lang: str) -> Callable[[str], str]:
    """``key`` → its text in ``lang`` (the key itself when unknown)."""
    column = 1 if lang == "zh" else 0

    def t(key: str) -> str:
        pair = STRINGS.get(key)
        return key if pair is None else pair[column]

    return t
